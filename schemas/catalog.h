/*
 * catalog.h — the schema catalog: which Avro schema a schema id names.
 *
 * Two kinds of schema live here. The READER schemas are the project's own,
 * compiled into the binary from the .avsc files of schemas/: one per kind
 * (deal, licence consumption, support, alert); decoding resolves into them
 * and encoding writes them. The WRITER schemas are whatever the producers of
 * the input topics used, named by the schema id of each record.
 *
 * Without a Schema Registry the writer schemas are the reader schemas under
 * fixed ids (PP_SCHEMA_ID_*), which is what `partnerpulse generate`, the demo
 * and the tests write. With a registry (pp_schema_catalog_set_registry) an
 * unknown id is fetched once (`GET /schemas/ids/{id}`), parsed and cached for
 * the life of the process; the local ids then mean nothing.
 *
 * The event type is decided by the writer schema's full name, never by the
 * topic (DESIGN.md §3).
 */
#ifndef PP_SCHEMA_CATALOG_H
#define PP_SCHEMA_CATALOG_H

#include <stddef.h>
#include <stdint.h>

#include <avro.h>

struct pp_registry;

enum pp_schema_kind {
    PP_SCHEMA_OTHER = 0, /* a writer schema whose full name is none of ours */
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
    int32_t id; /* readers: the id written by encode (a registered one with a registry) */
    enum pp_schema_kind kind;
    const char *fullname; /* e.g. dev.partnerpulse.events.Deal */
    const char *json;     /* the schema text */
    avro_schema_t schema;
    /* Readers only (NULL for writers fetched from a registry): one reusable
     * value per schema, for encoding, so nothing is allocated per record. */
    avro_value_iface_t *iface;
    avro_value_t value;
    /* The codec's compiled resolution of this writer schema into the reader
     * of its kind (codec.c), built on first use and freed with the entry. */
    void *plan;
    void (*plan_free)(void *plan);
};

enum pp_schema_lookup {
    PP_SCHEMA_FOUND = 0,
    PP_SCHEMA_NOT_FOUND,   /* the registry (or the local catalog) does not know the id */
    PP_SCHEMA_UNAVAILABLE, /* the registry cannot be asked now: retry later, drop nothing */
    PP_SCHEMA_UNPARSABLE,  /* the registry's schema is not an Avro schema we can parse */
};

struct pp_schema_catalog;

/* Builds the local catalog from the embedded schemas. NULL with errstr filled
 * when an embedded schema does not parse (a build defect). */
struct pp_schema_catalog *pp_schema_catalog_new(char *errstr, size_t errstr_size);
void pp_schema_catalog_destroy(struct pp_schema_catalog *cat);

/* From now on writer schemas come from `reg` (borrowed; must outlive the
 * catalog) instead of the local ids. */
void pp_schema_catalog_set_registry(struct pp_schema_catalog *cat, struct pp_registry *reg);

/* Borrowed entries, valid for the catalog's life; NULL when unknown.
 * pp_schema_catalog_get only looks at what is already known (no I/O). */
struct pp_schema_entry *pp_schema_catalog_get(struct pp_schema_catalog *cat, int32_t id);
struct pp_schema_entry *pp_schema_catalog_by_kind(struct pp_schema_catalog *cat,
                                                  enum pp_schema_kind kind);

/* The writer schema of `id`: from the cache, or fetched from the registry
 * (blocking, bounded by the registry's timeout) on the first sight of the id.
 * After a failed fetch the registry is not asked again before a backoff
 * (250 ms doubling up to 10 s) has passed: those lookups return
 * PP_SCHEMA_UNAVAILABLE at once, so a down registry costs the loop at most one
 * timeout per backoff interval. Ids the registry does not know, and
 * schemas it serves that are not Avro or do not parse, are remembered for
 * 60 s. `detail` says what went wrong. */
enum pp_schema_lookup pp_schema_catalog_lookup(struct pp_schema_catalog *cat, int32_t id,
                                               struct pp_schema_entry **out, char *detail,
                                               size_t detail_size);

/* Adds a writer schema under `id` (what a registry lookup does; also used by
 * tests to stand in for a registry). A kind is given by the full name.
 * Returns 0, or -1 with errstr when the schema does not parse, the id is
 * taken, or the catalog is full. */
int pp_schema_catalog_add(struct pp_schema_catalog *cat, int32_t id, const char *json, char *errstr,
                          size_t errstr_size);

/* Sets the id that encoding writes for a kind (the alert schema's registered
 * id). */
void pp_schema_catalog_set_id(struct pp_schema_catalog *cat, enum pp_schema_kind kind, int32_t id);

/* The embedded schema text for a kind ("deal", "license_consumption", ...). */
const char *pp_schema_json(enum pp_schema_kind kind);

/* The full name of the reader schema of a kind. */
const char *pp_schema_fullname(enum pp_schema_kind kind);

#endif
