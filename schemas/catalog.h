/*
 * catalog.h — the schema catalog: which Avro schema a schema id names.
 *
 * Without a Schema Registry the catalog is local: the schemas compiled into
 * the binary from the .avsc files of schemas/ under fixed ids (PP_SCHEMA_ID_*), which is
 * what `partnerpulse generate`, the demo and the tests write. The event type
 * is decided by the writer schema's full name, never by the topic
 * (DESIGN.md §3).
 */
#ifndef PP_SCHEMA_CATALOG_H
#define PP_SCHEMA_CATALOG_H

#include <stddef.h>
#include <stdint.h>

#include <avro.h>

enum pp_schema_kind {
    PP_SCHEMA_DEAL = 1,
    PP_SCHEMA_CONSUMPTION = 2,
    PP_SCHEMA_SUPPORT = 3,
    PP_SCHEMA_ALERT = 4,
    PP_SCHEMA_KIND__MAX = 4,
};

/* The local catalog's ids: one per kind, equal to the kind. */
#define PP_SCHEMA_ID_DEAL        1
#define PP_SCHEMA_ID_CONSUMPTION 2
#define PP_SCHEMA_ID_SUPPORT     3
#define PP_SCHEMA_ID_ALERT       4

struct pp_schema_entry {
    int32_t id;
    enum pp_schema_kind kind;
    const char *fullname; /* e.g. dev.partnerpulse.events.Deal */
    const char *json;     /* the schema text (borrowed from the embedded table) */
    avro_schema_t schema;
    avro_value_iface_t *iface;
    avro_value_t value; /* one reusable value per schema: no allocation per record */
};

struct pp_schema_catalog;

/* Builds the local catalog from the embedded schemas. NULL with errstr filled
 * when an embedded schema does not parse (a build defect). */
struct pp_schema_catalog *pp_schema_catalog_new(char *errstr, size_t errstr_size);
void pp_schema_catalog_destroy(struct pp_schema_catalog *cat);

/* Borrowed entries, valid for the catalog's life; NULL when unknown. */
struct pp_schema_entry *pp_schema_catalog_get(struct pp_schema_catalog *cat, int32_t id);
struct pp_schema_entry *pp_schema_catalog_by_kind(struct pp_schema_catalog *cat,
                                                  enum pp_schema_kind kind);

/* The embedded schema text for a kind ("deal", "license_consumption", ...). */
const char *pp_schema_json(enum pp_schema_kind kind);

#endif
