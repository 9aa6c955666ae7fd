/*
 * catalog.c — reader schemas embedded from the .avsc files, writer schemas by
 * id (the local ids, or fetched once from a Schema Registry and cached).
 *
 * The cache is a small open-addressing table keyed by id: a process sees a
 * handful of schema ids over its life, and a lookup happens for every record,
 * so it must cost a hash and a compare. It is capped (MAX_WRITERS): ids are
 * chosen by whoever writes the input, and a stream of made-up ids must not
 * grow memory without bound — past the cap new ids are treated as unknown.
 */
#include "catalog.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "embedded.h"
#include "palloc.h"
#include "registry.h"

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

#define MAX_WRITERS   4096 /* cached writer schemas */
#define TABLE_SIZE    8192 /* power of two, twice MAX_WRITERS */
#define NEG_SLOTS     64   /* remembered unknown ids */
#define NEG_TTL_MS    60000
#define BACKOFF_MIN   250
#define BACKOFF_MAX   10000
#define MAX_JSON_SIZE (1024 * 1024)

struct negative {
    int32_t id;
    int64_t until_ms;
    enum pp_schema_lookup result; /* NOT_FOUND or UNPARSABLE */
};

struct pp_schema_catalog {
    struct pp_schema_entry readers[NKINDS];
    struct pp_registry *reg;
    struct pp_schema_entry **table; /* writer schemas by id (registry mode) */
    size_t writers;
    struct negative neg[NEG_SLOTS];
    size_t neg_next;
    int64_t retry_at_ms; /* no registry request before this (backoff) */
    int64_t backoff_ms;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

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

const char *pp_schema_fullname(enum pp_schema_kind kind)
{
    for (size_t i = 0; i < NKINDS; i++) {
        if (kinds[i].kind == kind) {
            return kinds[i].fullname;
        }
    }
    return NULL;
}

static void entry_clear(struct pp_schema_entry *e)
{
    if (e->plan && e->plan_free) {
        e->plan_free(e->plan);
    }
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

struct pp_schema_catalog *pp_schema_catalog_new(char *errstr, size_t errstr_size)
{
    struct pp_schema_catalog *cat = pp_xcalloc(1, sizeof(*cat));
    for (size_t i = 0; i < NKINDS; i++) {
        struct pp_schema_entry *e = &cat->readers[i];
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
        entry_clear(&cat->readers[i]);
    }
    if (cat->table) {
        for (size_t i = 0; i < TABLE_SIZE; i++) {
            struct pp_schema_entry *e = cat->table[i];
            if (e) {
                entry_clear(e);
                free((char *)e->fullname);
                free((char *)e->json);
                free(e);
            }
        }
        free(cat->table);
    }
    free(cat);
}

void pp_schema_catalog_set_registry(struct pp_schema_catalog *cat, struct pp_registry *reg)
{
    cat->reg = reg;
}

void pp_schema_catalog_set_id(struct pp_schema_catalog *cat, enum pp_schema_kind kind, int32_t id)
{
    struct pp_schema_entry *e = pp_schema_catalog_by_kind(cat, kind);
    if (e) {
        e->id = id;
    }
}

static size_t slot_of(int32_t id)
{
    uint32_t h = (uint32_t)id * 2654435761u; /* Knuth's multiplicative hash */
    return (size_t)(h & (TABLE_SIZE - 1));
}

static struct pp_schema_entry *table_find(const struct pp_schema_catalog *cat, int32_t id)
{
    if (cat->table == NULL) {
        return NULL;
    }
    for (size_t i = slot_of(id), n = 0; n < TABLE_SIZE; i = (i + 1) & (TABLE_SIZE - 1), n++) {
        struct pp_schema_entry *e = cat->table[i];
        if (e == NULL) {
            return NULL;
        }
        if (e->id == id) {
            return e;
        }
    }
    return NULL;
}

struct pp_schema_entry *pp_schema_catalog_get(struct pp_schema_catalog *cat, int32_t id)
{
    struct pp_schema_entry *e = table_find(cat, id);
    if (e || cat->reg) {
        return e;
    }
    for (size_t i = 0; i < NKINDS; i++) {
        if ((int32_t)cat->readers[i].kind == id) {
            return &cat->readers[i];
        }
    }
    return NULL;
}

struct pp_schema_entry *pp_schema_catalog_by_kind(struct pp_schema_catalog *cat,
                                                  enum pp_schema_kind kind)
{
    for (size_t i = 0; i < NKINDS; i++) {
        if (cat->readers[i].kind == kind) {
            return &cat->readers[i];
        }
    }
    return NULL;
}

int pp_schema_catalog_add(struct pp_schema_catalog *cat, int32_t id, const char *json, char *errstr,
                          size_t errstr_size)
{
    if (table_find(cat, id) != NULL) {
        snprintf(errstr, errstr_size, "schema id %d is already known", (int)id);
        return -1;
    }
    if (cat->writers >= MAX_WRITERS) {
        snprintf(errstr, errstr_size, "more than %d writer schemas", MAX_WRITERS);
        return -1;
    }
    size_t len = strlen(json);
    if (len > MAX_JSON_SIZE) {
        snprintf(errstr, errstr_size, "schema id %d: %zu bytes of schema text", (int)id, len);
        return -1;
    }
    avro_schema_t schema;
    if (avro_schema_from_json_length(json, len, &schema) != 0) {
        snprintf(errstr, errstr_size, "schema id %d does not parse: %s", (int)id, avro_strerror());
        avro_set_error("%s", "");
        return -1;
    }
    struct pp_schema_entry *e = pp_xcalloc(1, sizeof(*e));
    e->id = id;
    e->schema = schema;
    e->json = pp_xstrdup(json);
    const char *name = avro_schema_type_name(schema);
    const char *ns = avro_schema_namespace(schema);
    char full[512];
    if (avro_typeof(schema) != AVRO_RECORD || name == NULL) {
        snprintf(full, sizeof(full), "(not a record)");
    }
    else if (ns && ns[0]) {
        snprintf(full, sizeof(full), "%s.%s", ns, name);
    }
    else {
        snprintf(full, sizeof(full), "%s", name);
    }
    e->fullname = pp_xstrdup(full);
    e->kind = PP_SCHEMA_OTHER;
    for (size_t i = 0; i < NKINDS; i++) {
        if (strcmp(kinds[i].fullname, full) == 0) {
            e->kind = kinds[i].kind;
        }
    }
    if (cat->table == NULL) {
        cat->table = pp_xcalloc(TABLE_SIZE, sizeof(*cat->table));
    }
    size_t i = slot_of(id);
    while (cat->table[i] != NULL) {
        i = (i + 1) & (TABLE_SIZE - 1);
    }
    cat->table[i] = e;
    cat->writers++;
    return 0;
}

static const struct negative *negative_hit(const struct pp_schema_catalog *cat, int32_t id,
                                           int64_t now)
{
    for (size_t i = 0; i < NEG_SLOTS; i++) {
        if (cat->neg[i].until_ms > now && cat->neg[i].id == id) {
            return &cat->neg[i];
        }
    }
    return NULL;
}

/* Remembers a final answer for an id (a small ring: old ones are forgotten
 * first), so a stream of records with that id costs no request each. */
static void negative_add(struct pp_schema_catalog *cat, int32_t id, int64_t now,
                         enum pp_schema_lookup result)
{
    cat->neg[cat->neg_next] = (struct negative){id, now + NEG_TTL_MS, result};
    cat->neg_next = (cat->neg_next + 1) % NEG_SLOTS;
}

enum pp_schema_lookup pp_schema_catalog_lookup(struct pp_schema_catalog *cat, int32_t id,
                                               struct pp_schema_entry **out, char *detail,
                                               size_t detail_size)
{
    *out = pp_schema_catalog_get(cat, id);
    if (*out) {
        return PP_SCHEMA_FOUND;
    }
    if (cat->reg == NULL) {
        snprintf(detail, detail_size, "schema id %d is not in the local catalog", (int)id);
        return PP_SCHEMA_NOT_FOUND;
    }
    int64_t now = mono_ms();
    const struct negative *neg = negative_hit(cat, id, now);
    if (neg) {
        snprintf(detail, detail_size, "schema id %d: %s", (int)id,
                 neg->result == PP_SCHEMA_NOT_FOUND
                     ? "not found in the schema registry"
                     : "the registry's schema is not an Avro schema partnerpulse can parse");
        return neg->result;
    }
    if (now < cat->retry_at_ms) {
        snprintf(detail, detail_size,
                 "schema id %d: schema registry %s unavailable, next attempt in %lld ms", (int)id,
                 pp_registry_url(cat->reg), (long long)(cat->retry_at_ms - now));
        return PP_SCHEMA_UNAVAILABLE;
    }
    char *json = NULL;
    char err[256] = "";
    enum pp_registry_err rerr = pp_registry_schema_by_id(cat->reg, id, &json, err, sizeof(err));
    switch (rerr) {
    case PP_REGISTRY_OK:
        break;
    case PP_REGISTRY_NOT_FOUND:
        negative_add(cat, id, now, PP_SCHEMA_NOT_FOUND);
        cat->backoff_ms = 0;
        snprintf(detail, detail_size, "schema id %d: %s", (int)id, err);
        return PP_SCHEMA_NOT_FOUND;
    case PP_REGISTRY_UNAVAILABLE:
        cat->backoff_ms = cat->backoff_ms == 0 ? BACKOFF_MIN : cat->backoff_ms * 2;
        if (cat->backoff_ms > BACKOFF_MAX) {
            cat->backoff_ms = BACKOFF_MAX;
        }
        cat->retry_at_ms = mono_ms() + cat->backoff_ms;
        snprintf(detail, detail_size, "schema id %d: %s", (int)id, err);
        return PP_SCHEMA_UNAVAILABLE;
    case PP_REGISTRY_INVALID:
        negative_add(cat, id, now, PP_SCHEMA_UNPARSABLE);
        snprintf(detail, detail_size, "schema id %d: %s", (int)id, err);
        return PP_SCHEMA_UNPARSABLE;
    }
    cat->backoff_ms = 0;
    int rc = pp_schema_catalog_add(cat, id, json, err, sizeof(err));
    free(json);
    if (rc != 0) {
        negative_add(cat, id, now, PP_SCHEMA_UNPARSABLE);
        snprintf(detail, detail_size, "%s", err);
        return PP_SCHEMA_UNPARSABLE;
    }
    *out = table_find(cat, id);
    return PP_SCHEMA_FOUND;
}
