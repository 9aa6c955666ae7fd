/*
 * catalog.c — the local schema catalog built from the embedded .avsc files.
 */
#include "catalog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embedded.h"

struct kind_name {
    enum pp_schema_kind kind;
    const char *file;
    const char *fullname;
};

static const struct kind_name kinds[] = {
    {PP_SCHEMA_DEAL, "deal", "dev.partnerpulse.events.Deal"},
    {PP_SCHEMA_CONSUMPTION, "license_consumption", "dev.partnerpulse.events.LicenseConsumption"},
    {PP_SCHEMA_SUPPORT, "support", "dev.partnerpulse.events.Support"},
    {PP_SCHEMA_ALERT, "alert", "dev.partnerpulse.alerts.Alert"},
};
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

struct pp_schema_catalog {
    struct pp_schema_entry entries[NKINDS];
};

const char *pp_schema_json(enum pp_schema_kind kind)
{
    for (size_t i = 0; i < NKINDS; i++) {
        if (kinds[i].kind != kind) {
            continue;
        }
        for (const struct pp_schema_embedded *e = pp_schema_embedded; e->name; e++) {
            if (strcmp(e->name, kinds[i].file) == 0) {
                return e->json;
            }
        }
    }
    return NULL;
}

struct pp_schema_catalog *pp_schema_catalog_new(char *errstr, size_t errstr_size)
{
    struct pp_schema_catalog *cat = calloc(1, sizeof(*cat));
    if (cat == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < NKINDS; i++) {
        struct pp_schema_entry *e = &cat->entries[i];
        e->id = (int32_t)kinds[i].kind;
        e->kind = kinds[i].kind;
        e->fullname = kinds[i].fullname;
        e->json = pp_schema_json(kinds[i].kind);
        if (e->json == NULL ||
            avro_schema_from_json_length(e->json, strlen(e->json), &e->schema) != 0) {
            snprintf(errstr, errstr_size, "embedded schema %s does not parse: %s", kinds[i].file,
                     avro_strerror());
            pp_schema_catalog_destroy(cat);
            return NULL;
        }
        e->iface = avro_generic_class_from_schema(e->schema);
        if (e->iface == NULL || avro_generic_value_new(e->iface, &e->value) != 0) {
            snprintf(errstr, errstr_size, "cannot build Avro value for %s: %s", kinds[i].file,
                     avro_strerror());
            pp_schema_catalog_destroy(cat);
            return NULL;
        }
    }
    return cat;
}

void pp_schema_catalog_destroy(struct pp_schema_catalog *cat)
{
    if (cat == NULL) {
        return;
    }
    for (size_t i = 0; i < NKINDS; i++) {
        struct pp_schema_entry *e = &cat->entries[i];
        if (e->iface) {
            if (e->value.self) {
                avro_value_decref(&e->value);
            }
            avro_value_iface_decref(e->iface);
        }
        if (e->schema) {
            avro_schema_decref(e->schema);
        }
    }
    free(cat);
}

struct pp_schema_entry *pp_schema_catalog_get(struct pp_schema_catalog *cat, int32_t id)
{
    for (size_t i = 0; i < NKINDS; i++) {
        if (cat->entries[i].id == id) {
            return &cat->entries[i];
        }
    }
    return NULL;
}

struct pp_schema_entry *pp_schema_catalog_by_kind(struct pp_schema_catalog *cat,
                                                  enum pp_schema_kind kind)
{
    for (size_t i = 0; i < NKINDS; i++) {
        if (cat->entries[i].kind == kind) {
            return &cat->entries[i];
        }
    }
    return NULL;
}
