/*
 * codec.c — Confluent wire format ⇄ struct pp_event / struct pp_alert.
 *
 * Each event schema is described once, as a table of fields (name, kind,
 * where it lives in struct pp_event, whether it is an optional union). The
 * same table drives decoding, validation of identifiers and encoding, so the
 * .avsc files and the C structs cannot drift apart silently: a table field
 * missing from the schema fails pp_codec_new().
 */
#include "codec.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "palloc.h"
#include "ptime.h"

enum fkind { F_STR, F_INT, F_LONG, F_DOUBLE, F_BOOL, F_ENUM };

struct fdesc {
    const char *name;
    enum fkind kind;
    size_t off;     /* offset in struct pp_event */
    size_t size;    /* F_STR: capacity of the char array */
    size_t has_off; /* optional fields: offset of the presence flag */
    bool optional;  /* ["null", T] union, null first */
    bool required;  /* F_STR: must not be empty */
    int (*from_name)(const char *);
    const char *(*to_name)(int);
};

#define EV(m) offsetof(struct pp_event, m)
#define STR(n, m, req)                                                                             \
    {                                                                                              \
        n, F_STR, EV(m), sizeof(((struct pp_event *)0)->m), 0, false, req, 0, 0                    \
    }
#define OSTR(n, m, h)                                                                              \
    {                                                                                              \
        n, F_STR, EV(m), sizeof(((struct pp_event *)0)->m), EV(h), true, false, 0, 0               \
    }
#define NUM(n, k, m)                                                                               \
    {                                                                                              \
        n, k, EV(m), 0, 0, false, false, 0, 0                                                      \
    }
#define ONUM(n, k, m, h)                                                                           \
    {                                                                                              \
        n, k, EV(m), 0, EV(h), true, false, 0, 0                                                   \
    }
#define ENUM(n, m, from, to)                                                                       \
    {                                                                                              \
        n, F_ENUM, EV(m), 0, 0, false, false, from, to                                             \
    }

static const struct fdesc deal_fields[] = {
    STR("event_id", event_id, true),
    NUM("occurred_at", F_LONG, occurred_at_ms),
    STR("deal_id", u.deal.deal_id, true),
    ENUM("event_type", u.deal.event_type, pp_deal_event_from_name, pp_deal_event_name),
    STR("partner_id", u.deal.partner_id, true),
    STR("customer_id", u.deal.customer_id, true),
    STR("product_id", u.deal.product_id, true),
    ENUM("kind", u.deal.kind, pp_deal_kind_from_name, pp_deal_kind_name),
    NUM("close_date", F_INT, u.deal.close_date),
    ONUM("start_date", F_INT, u.deal.start_date, u.deal.has_start_date),
    NUM("term_months", F_INT, u.deal.term_months),
    NUM("seats", F_INT, u.deal.seats),
    NUM("amount", F_LONG, u.deal.amount),
    ONUM("list_amount", F_LONG, u.deal.list_amount, u.deal.has_list_amount),
    ONUM("discount_pct", F_DOUBLE, u.deal.discount_pct, u.deal.has_discount_pct),
    STR("currency", u.deal.currency, true),
    ONUM("commit_units", F_LONG, u.deal.commit_units, u.deal.has_commit_units),
    ONUM("quarter_end", F_BOOL, u.deal.quarter_end, u.deal.has_quarter_end),
    STR("fiscal_quarter", u.deal.fiscal_quarter, false),
};

static const struct fdesc consumption_fields[] = {
    STR("event_id", event_id, true),
    NUM("occurred_at", F_LONG, occurred_at_ms),
    STR("customer_id", u.consumption.customer_id, true),
    STR("product_id", u.consumption.product_id, true),
    NUM("as_of", F_INT, u.consumption.as_of),
    NUM("licenses_entitled", F_INT, u.consumption.licenses_entitled),
    NUM("licenses_active", F_INT, u.consumption.licenses_active),
    ONUM("consumption_units", F_DOUBLE, u.consumption.consumption_units,
         u.consumption.has_consumption_units),
    ONUM("period_start", F_INT, u.consumption.period_start, u.consumption.has_period_start),
    ONUM("period_end", F_INT, u.consumption.period_end, u.consumption.has_period_end),
};

static const struct fdesc support_fields[] = {
    STR("event_id", event_id, true),
    NUM("occurred_at", F_LONG, occurred_at_ms),
    STR("ticket_id", u.support.ticket_id, true),
    STR("customer_id", u.support.customer_id, true),
    OSTR("product_id", u.support.product_id, u.support.has_product_id),
    ENUM("event_type", u.support.event_type, pp_support_event_from_name, pp_support_event_name),
    NUM("severity", F_INT, u.support.severity),
    ONUM("csat_score", F_INT, u.support.csat_score, u.support.has_csat_score),
    OSTR("vendor_incident_id", u.support.vendor_incident_id, u.support.has_vendor_incident_id),
};

struct table {
    enum pp_event_type type;
    enum pp_schema_kind kind;
    const struct fdesc *fields;
    size_t n;
};

#define NFIELDS(a) (sizeof(a) / sizeof((a)[0]))
static const struct table tables[] = {
    {PP_EV_DEAL, PP_SCHEMA_DEAL, deal_fields, NFIELDS(deal_fields)},
    {PP_EV_CONSUMPTION, PP_SCHEMA_CONSUMPTION, consumption_fields, NFIELDS(consumption_fields)},
    {PP_EV_SUPPORT, PP_SCHEMA_SUPPORT, support_fields, NFIELDS(support_fields)},
};
#define NTABLES    NFIELDS(tables)
#define MAX_FIELDS 24

struct bound_table {
    const struct table *t;
    struct pp_schema_entry *entry;
    int index[MAX_FIELDS]; /* field position in the record schema */
};

struct pp_codec {
    struct pp_schema_catalog *cat;
    struct pp_codec_limits lim;
    struct bound_table bound[NTABLES];
    avro_writer_t writer;
    char *buf;
    size_t buf_cap;
};

const char *pp_decode_reason(enum pp_decode_err err)
{
    static const char *const names[PP_DECODE__COUNT] = {
        "ok",           "too_short",      "bad_magic",     "too_large",       "unknown_schema_id",
        "not_an_event", "malformed_avro", "invalid_value", "schema_mismatch", "schema_unavailable",
    };
    return (unsigned)err < PP_DECODE__COUNT ? names[err] : "unknown";
}

void pp_codec_limits_defaults(struct pp_codec_limits *lim)
{
    lim->max_message_bytes = 1024 * 1024;
    lim->min_event_ms = pp_day_to_ms(pp_day_from_civil(2000, 1, 1));
    lim->max_event_ms = pp_day_to_ms(pp_day_from_civil(2100, 1, 1));
    lim->max_string_bytes = 64 * 1024;
    lim->max_items = 100000;
}

struct pp_codec *pp_codec_new(struct pp_schema_catalog *cat, const struct pp_codec_limits *lim)
{
    struct pp_codec *codec = pp_xcalloc(1, sizeof(*codec));
    codec->cat = cat;
    pp_codec_limits_defaults(&codec->lim);
    if (lim) {
        codec->lim = *lim;
        /* Callers that predate a limit leave it 0: keep its default. */
        struct pp_codec_limits def;
        pp_codec_limits_defaults(&def);
        if (codec->lim.max_string_bytes == 0) {
            codec->lim.max_string_bytes = def.max_string_bytes;
        }
        if (codec->lim.max_items == 0) {
            codec->lim.max_items = def.max_items;
        }
    }
    for (size_t i = 0; i < NTABLES; i++) {
        struct bound_table *b = &codec->bound[i];
        b->t = &tables[i];
        b->entry = pp_schema_catalog_by_kind(cat, tables[i].kind);
        if (b->entry == NULL) {
            pp_codec_destroy(codec);
            return NULL;
        }
        for (size_t f = 0; f < b->t->n; f++) {
            b->index[f] =
                avro_schema_record_field_get_index(b->entry->schema, b->t->fields[f].name);
            if (b->index[f] < 0) {
                pp_codec_destroy(codec);
                return NULL;
            }
        }
    }
    codec->buf_cap = 4096;
    codec->buf = pp_xmalloc(codec->buf_cap);
    codec->writer = avro_writer_memory(codec->buf, (int64_t)codec->buf_cap);
    return codec;
}

void pp_codec_destroy(struct pp_codec *codec)
{
    if (codec == NULL) {
        return;
    }
    if (codec->writer) {
        avro_writer_free(codec->writer);
    }
    free(codec->buf);
    free(codec);
}

bool pp_wire_schema_id(const void *buf, size_t len, int32_t *id)
{
    const unsigned char *p = buf;
    if (len < PP_WIRE_HEADER || p[0] != 0) {
        return false;
    }
    *id = (int32_t)(((uint32_t)p[1] << 24) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 8) | p[4]);
    return true;
}

/* ---- the resolving decoder ----------------------------------------------
 *
 * avro-c allocates whatever a record declares (a string of 2^63 bytes, an
 * array of a billion nulls) before noticing the input is short, reads an
 * enum symbol for any index, and its schema resolver matches enums by
 * position and ignores reader defaults. So no avro-c value is used here: the
 * body is walked once against the WRITER schema, and every writer field is
 * either read straight into struct pp_event (with the reader's type, by
 * field name) or skipped, following a plan compiled once per writer schema.
 *
 * Every length must fit in the bytes that remain and under max_string_bytes,
 * every enum index and union branch must exist, collections are capped,
 * nesting is bounded, trailing bytes are refused. Domain problems (a string
 * too long for its field, an empty identifier) are remembered and reported
 * only once the whole body has proved well-formed, so a record that is both
 * malformed and invalid is always `malformed_avro`.
 */

#define MAX_DEPTH 32

enum op {
    OP_SKIP,   /* a writer field the reader lacks: walk over it */
    OP_NULL,   /* writer null into an optional reader field: absent */
    OP_STR,    /* writer string or bytes into a reader string */
    OP_INT,    /* writer int into reader int, long or double */
    OP_LONG,   /* writer long into reader long or double */
    OP_FLOAT,  /* writer float into reader double */
    OP_DOUBLE, /* writer double into reader double */
    OP_BOOL,
    OP_ENUM,  /* by symbol name through enum_map */
    OP_UNION, /* writer union: read the branch index, then its step */
    OP_FAIL,  /* a writer type the reader field cannot take */
};

struct step {
    enum op op;
    const struct fdesc *fd; /* the reader field; NULL for OP_SKIP */
    const char *wname;      /* the writer field's name, for details */
    avro_schema_t skip;     /* OP_SKIP: the writer schema to walk */
    int *enum_map;          /* OP_ENUM: writer index -> domain value, -1 unknown */
    size_t enum_n;
    struct step *branches; /* OP_UNION */
    size_t nbranches;
};

struct plan {
    const struct table *t; /* NULL when the writer does not resolve */
    struct step *steps;    /* one per writer field, in writer order */
    size_t n;
    struct pp_event tmpl; /* reader defaults of the fields the writer lacks */
    char error[200];      /* why the writer does not resolve (t == NULL) */
};

static void step_free(struct step *st)
{
    free(st->enum_map);
    for (size_t i = 0; i < st->nbranches; i++) {
        step_free(&st->branches[i]);
    }
    free(st->branches);
}

static void plan_free(void *arg)
{
    struct plan *plan = arg;
    for (size_t i = 0; plan && i < plan->n; i++) {
        step_free(&plan->steps[i]);
    }
    if (plan) {
        free(plan->steps);
    }
    free(plan);
}

static avro_schema_t deref(avro_schema_t s)
{
    for (int i = 0; i < MAX_DEPTH && avro_typeof(s) == AVRO_LINK; i++) {
        s = avro_schema_link_target(s);
    }
    return s;
}

/* How a writer value of schema `ws` goes into reader field `fd`, whose enum
 * type default (for unknown symbols) is `enum_default` (-1: none). */
static void compile_value(struct step *st, avro_schema_t ws, const struct fdesc *fd,
                          int enum_default)
{
    ws = deref(ws);
    st->fd = fd;
    st->op = OP_FAIL;
    st->skip = ws; /* OP_FAIL walks over the value it cannot take */
    switch (avro_typeof(ws)) {
    case AVRO_UNION:
        st->op = OP_UNION;
        st->nbranches = avro_schema_union_size(ws);
        st->branches = pp_xcalloc(st->nbranches ? st->nbranches : 1, sizeof(*st->branches));
        for (size_t i = 0; i < st->nbranches; i++) {
            st->branches[i].wname = st->wname;
            compile_value(&st->branches[i], avro_schema_union_branch(ws, (int)i), fd, enum_default);
        }
        return;
    case AVRO_NULL:
        st->op = fd->optional ? OP_NULL : OP_FAIL;
        return;
    case AVRO_STRING:
    case AVRO_BYTES:
        st->op = fd->kind == F_STR ? OP_STR : OP_FAIL;
        return;
    case AVRO_INT32:
        st->op =
            (fd->kind == F_INT || fd->kind == F_LONG || fd->kind == F_DOUBLE) ? OP_INT : OP_FAIL;
        return;
    case AVRO_INT64:
        st->op = (fd->kind == F_LONG || fd->kind == F_DOUBLE) ? OP_LONG : OP_FAIL;
        return;
    case AVRO_FLOAT:
        st->op = fd->kind == F_DOUBLE ? OP_FLOAT : OP_FAIL;
        return;
    case AVRO_DOUBLE:
        st->op = fd->kind == F_DOUBLE ? OP_DOUBLE : OP_FAIL;
        return;
    case AVRO_BOOLEAN:
        st->op = fd->kind == F_BOOL ? OP_BOOL : OP_FAIL;
        return;
    case AVRO_ENUM:
        if (fd->kind != F_ENUM) {
            return;
        }
        st->op = OP_ENUM;
        st->enum_n = (size_t)avro_schema_enum_number_of_symbols(ws);
        st->enum_map = pp_xcalloc(st->enum_n ? st->enum_n : 1, sizeof(int));
        for (size_t i = 0; i < st->enum_n; i++) {
            const char *sym = avro_schema_enum_get(ws, (int)i);
            int v = sym ? fd->from_name(sym) : -1;
            st->enum_map[i] = v >= 0 ? v : enum_default;
        }
        return;
    default:
        return;
    }
}

/* Whether any value of the step can be read (a union needs one good branch). */
static bool step_possible(const struct step *st)
{
    if (st->op == OP_UNION) {
        for (size_t i = 0; i < st->nbranches; i++) {
            if (step_possible(&st->branches[i])) {
                return true;
            }
        }
        return false;
    }
    return st->op != OP_FAIL;
}

/* Copies into the event at a table offset. Not inlined: GCC's
 * -Wstringop-overflow (with ASan) otherwise guesses the destination's size
 * from the first member of struct pp_event. */
__attribute__((noinline)) static void put_at(struct pp_event *ev, size_t off, const void *src,
                                             size_t n)
{
    memcpy((char *)ev + off, src, n);
}

/* Stores a JSON default of the reader into the template event; false when
 * it does not fit the field. */
static bool apply_default(const struct fdesc *fd, json_t *def, struct pp_event *ev)
{
    if (fd->optional) {
        if (json_is_null(def)) {
            bool absent = false;
            put_at(ev, fd->has_off, &absent, sizeof(bool));
            return true;
        }
        bool present = true; /* not valid Avro for ["null", T], tolerated */
        put_at(ev, fd->has_off, &present, sizeof(bool));
    }
    switch (fd->kind) {
    case F_STR: {
        const char *s = json_string_value(def);
        if (s == NULL || strlen(s) >= fd->size) {
            return false;
        }
        put_at(ev, fd->off, s, strlen(s) + 1);
        return true;
    }
    case F_INT: {
        if (!json_is_integer(def)) {
            return false;
        }
        int32_t v = (int32_t)json_integer_value(def);
        put_at(ev, fd->off, &v, sizeof(v));
        return true;
    }
    case F_LONG: {
        if (!json_is_integer(def)) {
            return false;
        }
        int64_t v = (int64_t)json_integer_value(def);
        put_at(ev, fd->off, &v, sizeof(v));
        return true;
    }
    case F_DOUBLE: {
        if (!json_is_number(def)) {
            return false;
        }
        double v = json_number_value(def);
        put_at(ev, fd->off, &v, sizeof(v));
        return true;
    }
    case F_BOOL: {
        if (!json_is_boolean(def)) {
            return false;
        }
        bool v = json_is_true(def);
        put_at(ev, fd->off, &v, sizeof(v));
        return true;
    }
    case F_ENUM: {
        int v = json_is_string(def) ? fd->from_name(json_string_value(def)) : -1;
        if (v < 0) {
            return false;
        }
        put_at(ev, fd->off, &v, sizeof(int));
        return true;
    }
    }
    return false;
}

static json_t *reader_field_json(json_t *reader, const char *name)
{
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(reader, "fields"), i, f)
    {
        const char *n = json_string_value(json_object_get(f, "name"));
        if (n && strcmp(n, name) == 0) {
            return f;
        }
    }
    return NULL;
}

/* The reader's enum default (for symbols it does not know), -1 when none. */
static int reader_enum_default(json_t *rfield, const struct fdesc *fd)
{
    json_t *type = json_object_get(rfield, "type");
    const char *sym = json_string_value(json_object_get(type, "default"));
    return (fd->kind == F_ENUM && sym) ? fd->from_name(sym) : -1;
}

#define PLAN_FAIL(...)                                                                             \
    do {                                                                                           \
        snprintf(plan->error, sizeof(plan->error), __VA_ARGS__);                                   \
        plan->t = NULL;                                                                            \
        goto out;                                                                                  \
    } while (0)

/* Compiles the resolution of writer `w` into the reader table `t`. */
static struct plan *compile_plan(struct pp_codec *codec, struct pp_schema_entry *w,
                                 const struct table *t)
{
    struct plan *plan = pp_xcalloc(1, sizeof(*plan));
    plan->t = t;
    plan->tmpl.type = t->type;
    struct pp_schema_entry *r = pp_schema_catalog_by_kind(codec->cat, t->kind);
    json_t *reader = json_loads(r->json, 0, NULL);
    avro_schema_t ws = deref(w->schema);
    bool seen[MAX_FIELDS] = {false};
    if (reader == NULL) {
        PLAN_FAIL("the reader schema %s does not parse", r->fullname); /* a build defect */
    }
    if (avro_typeof(ws) != AVRO_RECORD) {
        PLAN_FAIL("writer schema %d is not a record", (int)w->id);
    }
    plan->n = avro_schema_record_size(ws);
    plan->steps = pp_xcalloc(plan->n ? plan->n : 1, sizeof(*plan->steps));
    for (size_t i = 0; i < plan->n; i++) {
        struct step *st = &plan->steps[i];
        st->wname = avro_schema_record_field_name(ws, (int)i);
        avro_schema_t fs = avro_schema_record_field_get_by_index(ws, (int)i);
        size_t f = 0;
        while (f < t->n && strcmp(t->fields[f].name, st->wname) != 0) {
            f++;
        }
        if (f == t->n) {
            st->op = OP_SKIP;
            st->skip = fs;
            continue;
        }
        seen[f] = true;
        compile_value(st, fs, &t->fields[f],
                      reader_enum_default(reader_field_json(reader, st->wname), &t->fields[f]));
        if (!step_possible(st)) {
            PLAN_FAIL("field %s: writer type %s cannot be read as the reader's", st->wname,
                      avro_schema_type_name(deref(fs)) ? avro_schema_type_name(deref(fs)) : "?");
        }
    }
    for (size_t f = 0; f < t->n; f++) {
        if (seen[f]) {
            continue;
        }
        json_t *def = json_object_get(reader_field_json(reader, t->fields[f].name), "default");
        if (def == NULL) {
            PLAN_FAIL("field %s: missing in writer schema %d and without a default in %s",
                      t->fields[f].name, (int)w->id, r->fullname);
        }
        if (!apply_default(&t->fields[f], def, &plan->tmpl)) {
            PLAN_FAIL("field %s: the reader's default does not fit", t->fields[f].name);
        }
    }
out:
    json_decref(reader);
    return plan;
}

struct dec {
    const unsigned char *p;
    const unsigned char *end;
    size_t items;
    const struct pp_codec_limits *lim;
    enum pp_decode_err err;  /* the hard error, once set */
    enum pp_decode_err soft; /* the first domain problem, reported after the walk */
    char *detail;
    size_t detail_size;
};

static bool read_varlong(struct dec *d, int64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (d->p >= d->end) {
            return false;
        }
        unsigned char b = *d->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0) {
            *out = (int64_t)(v >> 1) ^ -(int64_t)(v & 1); /* zig-zag */
            return true;
        }
    }
    return false; /* more than 10 bytes */
}

#define HARD(code, ...)                                                                            \
    do {                                                                                           \
        snprintf(d->detail, d->detail_size, __VA_ARGS__);                                          \
        d->err = (code);                                                                           \
        return false;                                                                              \
    } while (0)
#define SOFT(code, ...)                                                                            \
    do {                                                                                           \
        if (d->soft == PP_DECODE_OK) {                                                             \
            snprintf(d->detail, d->detail_size, __VA_ARGS__);                                      \
            d->soft = (code);                                                                      \
        }                                                                                          \
    } while (0)

/* A string or bytes length: fits the remaining bytes and the limit. */
static bool read_len(struct dec *d, const char *name, int64_t *n)
{
    if (!read_varlong(d, n) || *n < 0 || *n > d->end - d->p) {
        HARD(PP_DECODE_MALFORMED, "%s: length %lld does not fit the %lld remaining bytes", name,
             (long long)*n, (long long)(d->end - d->p));
    }
    if ((uint64_t)*n > d->lim->max_string_bytes) {
        HARD(PP_DECODE_TOO_LARGE, "%s: %lld bytes (limit %zu)", name, (long long)*n,
             d->lim->max_string_bytes);
    }
    return true;
}

/* Walks over one value of writer schema `s` without keeping it. */
static bool skip_value(struct dec *d, avro_schema_t s, int depth, const char *name)
{
    int64_t n = 0;
    if (depth > MAX_DEPTH) {
        HARD(PP_DECODE_MALFORMED, "%s: nested deeper than %d", name, MAX_DEPTH);
    }
    switch (avro_typeof(s)) {
    case AVRO_NULL:
        return true;
    case AVRO_BOOLEAN:
        if (d->p >= d->end || *d->p > 1) {
            HARD(PP_DECODE_MALFORMED, "%s: bad boolean", name);
        }
        d->p++;
        return true;
    case AVRO_INT32:
        if (!read_varlong(d, &n) || n < INT32_MIN || n > INT32_MAX) {
            HARD(PP_DECODE_MALFORMED, "%s: bad or truncated int", name);
        }
        return true;
    case AVRO_INT64:
        if (!read_varlong(d, &n)) {
            HARD(PP_DECODE_MALFORMED, "%s: bad or truncated long", name);
        }
        return true;
    case AVRO_FLOAT:
    case AVRO_DOUBLE: {
        size_t sz = avro_typeof(s) == AVRO_FLOAT ? 4 : 8;
        if ((size_t)(d->end - d->p) < sz) {
            HARD(PP_DECODE_MALFORMED, "%s: truncated number", name);
        }
        d->p += sz;
        return true;
    }
    case AVRO_STRING:
    case AVRO_BYTES:
        if (!read_len(d, name, &n)) {
            return false;
        }
        d->p += n;
        return true;
    case AVRO_FIXED:
        n = avro_schema_fixed_size(s);
        if (n < 0 || n > d->end - d->p) {
            HARD(PP_DECODE_MALFORMED, "%s: truncated fixed", name);
        }
        d->p += n;
        return true;
    case AVRO_ENUM:
        if (!read_varlong(d, &n) || n < 0 || n >= avro_schema_enum_number_of_symbols(s)) {
            HARD(PP_DECODE_MALFORMED, "%s: enum index %lld out of range", name, (long long)n);
        }
        return true;
    case AVRO_UNION:
        if (!read_varlong(d, &n) || n < 0 || (size_t)n >= avro_schema_union_size(s)) {
            HARD(PP_DECODE_MALFORMED, "%s: union branch %lld out of range", name, (long long)n);
        }
        return skip_value(d, avro_schema_union_branch(s, (int)n), depth + 1, name);
    case AVRO_RECORD:
        for (size_t i = 0; i < avro_schema_record_size(s); i++) {
            const char *fname = avro_schema_record_field_name(s, (int)i);
            if (!skip_value(d, avro_schema_record_field_get_by_index(s, (int)i), depth + 1,
                            fname)) {
                return false;
            }
        }
        return true;
    case AVRO_ARRAY:
    case AVRO_MAP:
        for (;;) {
            if (!read_varlong(d, &n)) {
                HARD(PP_DECODE_MALFORMED, "%s: truncated block count", name);
            }
            if (n == 0) {
                return true;
            }
            if (n < 0) { /* a negative count is followed by the block's byte size */
                int64_t bytes;
                if (n == INT64_MIN || !read_varlong(d, &bytes) || bytes < 0) {
                    HARD(PP_DECODE_MALFORMED, "%s: bad block header", name);
                }
                n = -n;
            }
            if ((uint64_t)n > d->lim->max_items || d->items + (size_t)n > d->lim->max_items) {
                HARD(PP_DECODE_TOO_LARGE, "%s: more than %zu items", name, d->lim->max_items);
            }
            d->items += (size_t)n;
            for (int64_t i = 0; i < n; i++) {
                if (avro_typeof(s) == AVRO_MAP) {
                    int64_t klen;
                    if (!read_len(d, name, &klen)) {
                        return false;
                    }
                    d->p += klen;
                }
                avro_schema_t item = avro_typeof(s) == AVRO_MAP ? avro_schema_map_values(s)
                                                                : avro_schema_array_items(s);
                if (!skip_value(d, item, depth + 1, name)) {
                    return false;
                }
            }
        }
    case AVRO_LINK:
        return skip_value(d, avro_schema_link_target(s), depth + 1, name);
    default:
        break;
    }
    HARD(PP_DECODE_MALFORMED, "%s: unsupported Avro type", name);
}

static void set_present(const struct fdesc *fd, struct pp_event *ev, bool present)
{
    if (fd->optional) {
        memcpy((char *)ev + fd->has_off, &present, sizeof(bool));
    }
}

/* Stores a number read from the writer into the reader field's type. */
static void store_number(const struct fdesc *fd, struct pp_event *ev, int64_t i, double f,
                         bool is_float)
{
    char *base = (char *)ev;
    switch (fd->kind) {
    case F_INT: {
        int32_t v = (int32_t)i;
        memcpy(base + fd->off, &v, sizeof(v));
        break;
    }
    case F_LONG:
        memcpy(base + fd->off, &i, sizeof(i));
        break;
    case F_DOUBLE: {
        double v = is_float ? f : (double)i;
        memcpy(base + fd->off, &v, sizeof(v));
        break;
    }
    default:
        break;
    }
    set_present(fd, ev, true);
}

static bool run_step(struct dec *d, const struct step *st, struct pp_event *ev)
{
    const struct fdesc *fd = st->fd;
    char *base = (char *)ev;
    int64_t n = 0;
    switch (st->op) {
    case OP_SKIP:
        return skip_value(d, st->skip, 1, st->wname);
    case OP_NULL:
        set_present(fd, ev, false);
        return true;
    case OP_STR: {
        if (!read_len(d, st->wname, &n)) {
            return false;
        }
        const unsigned char *s = d->p;
        d->p += n;
        if ((size_t)n >= fd->size || memchr(s, '\0', (size_t)n) != NULL) {
            SOFT(PP_DECODE_INVALID, "%s: string of %lld bytes (at most %zu, no NUL)", fd->name,
                 (long long)n, fd->size - 1);
            return true;
        }
        memcpy(base + fd->off, s, (size_t)n);
        base[fd->off + (size_t)n] = '\0';
        if (fd->required && n == 0) {
            SOFT(PP_DECODE_INVALID, "%s: empty", fd->name);
        }
        set_present(fd, ev, true);
        return true;
    }
    case OP_INT:
        if (!read_varlong(d, &n) || n < INT32_MIN || n > INT32_MAX) {
            HARD(PP_DECODE_MALFORMED, "%s: bad or truncated int", st->wname);
        }
        store_number(fd, ev, n, 0, false);
        return true;
    case OP_LONG:
        if (!read_varlong(d, &n)) {
            HARD(PP_DECODE_MALFORMED, "%s: bad or truncated long", st->wname);
        }
        store_number(fd, ev, n, 0, false);
        return true;
    case OP_FLOAT: {
        if (d->end - d->p < 4) {
            HARD(PP_DECODE_MALFORMED, "%s: truncated float", st->wname);
        }
        uint32_t u = (uint32_t)d->p[0] | (uint32_t)d->p[1] << 8 | (uint32_t)d->p[2] << 16 |
                     (uint32_t)d->p[3] << 24;
        float f;
        memcpy(&f, &u, sizeof(f));
        d->p += 4;
        store_number(fd, ev, 0, (double)f, true);
        return true;
    }
    case OP_DOUBLE: {
        if (d->end - d->p < 8) {
            HARD(PP_DECODE_MALFORMED, "%s: truncated double", st->wname);
        }
        uint64_t u = 0;
        for (int i = 7; i >= 0; i--) {
            u = u << 8 | d->p[i];
        }
        double f;
        memcpy(&f, &u, sizeof(f));
        d->p += 8;
        store_number(fd, ev, 0, f, true);
        return true;
    }
    case OP_BOOL: {
        if (d->p >= d->end || *d->p > 1) {
            HARD(PP_DECODE_MALFORMED, "%s: bad boolean", st->wname);
        }
        bool v = *d->p++ == 1;
        memcpy(base + fd->off, &v, sizeof(v));
        set_present(fd, ev, true);
        return true;
    }
    case OP_ENUM: {
        if (!read_varlong(d, &n) || n < 0 || (uint64_t)n >= st->enum_n) {
            HARD(PP_DECODE_MALFORMED, "%s: enum index %lld out of range", st->wname, (long long)n);
        }
        int v = st->enum_map[n];
        if (v < 0) {
            SOFT(PP_DECODE_SCHEMA_MISMATCH,
                 "%s: symbol #%lld is unknown to the reader, which has no enum default", fd->name,
                 (long long)n);
            return true;
        }
        memcpy(base + fd->off, &v, sizeof(int));
        return true;
    }
    case OP_UNION:
        if (!read_varlong(d, &n) || n < 0 || (uint64_t)n >= st->nbranches) {
            HARD(PP_DECODE_MALFORMED, "%s: union branch %lld out of range", st->wname,
                 (long long)n);
        }
        return run_step(d, &st->branches[n], ev);
    case OP_FAIL:
        break;
    }
    /* A union branch the reader cannot take (e.g. null into a required
     * field): Avro resolution fails for this record only. */
    SOFT(PP_DECODE_SCHEMA_MISMATCH, "%s: a %s value the reader's field cannot hold", st->wname,
         avro_schema_type_name(st->skip) ? avro_schema_type_name(st->skip) : "writer");
    return skip_value(d, st->skip, 1, st->wname);
}

/* The compiled plan of a writer entry (compiled on first use). */
static const struct plan *plan_of(struct pp_codec *codec, struct pp_schema_entry *e,
                                  const struct table *t)
{
    if (e->plan == NULL) {
        e->plan = compile_plan(codec, e, t);
        e->plan_free = plan_free;
    }
    return e->plan;
}

static const struct table *table_by_kind(enum pp_schema_kind kind)
{
    for (size_t i = 0; i < NTABLES; i++) {
        if (tables[i].kind == kind) {
            return &tables[i];
        }
    }
    return NULL;
}

#define INVALID(...)                                                                               \
    do {                                                                                           \
        snprintf(detail, detail_size, __VA_ARGS__);                                                \
        return PP_DECODE_INVALID;                                                                  \
    } while (0)

/* Domain checks beyond the schema: what the model cannot sensibly count. */
static enum pp_decode_err validate(const struct pp_codec *codec, const struct pp_event *ev,
                                   char *detail, size_t detail_size)
{
    if (ev->occurred_at_ms < codec->lim.min_event_ms ||
        ev->occurred_at_ms > codec->lim.max_event_ms) {
        INVALID("occurred_at: %lld ms is outside the accepted range",
                (long long)ev->occurred_at_ms);
    }
    switch (ev->type) {
    case PP_EV_DEAL: {
        const struct pp_deal *d = &ev->u.deal;
        if (d->term_months < 1 || d->term_months > 600) {
            INVALID("term_months: %d (expected 1..600)", d->term_months);
        }
        if (d->seats < 0 && d->event_type != PP_DEAL_AMENDED) {
            INVALID("seats: %d is negative (only amendments may remove seats)", d->seats);
        }
        if (d->has_discount_pct && !(d->discount_pct >= 0.0 && d->discount_pct < 1.0)) {
            INVALID("discount_pct: %g (expected 0 <= d < 1)", d->discount_pct);
        }
        if (d->has_list_amount && d->list_amount < 0) {
            INVALID("list_amount: %lld is negative", (long long)d->list_amount);
        }
        break;
    }
    case PP_EV_CONSUMPTION: {
        const struct pp_consumption *c = &ev->u.consumption;
        if (c->licenses_entitled < 0 || c->licenses_active < 0) {
            INVALID("licenses: entitled %d, active %d (expected >= 0)", c->licenses_entitled,
                    c->licenses_active);
        }
        if (c->has_consumption_units &&
            !(isfinite(c->consumption_units) && c->consumption_units >= 0)) {
            INVALID("consumption_units: %g (expected a finite value >= 0)", c->consumption_units);
        }
        break;
    }
    case PP_EV_SUPPORT: {
        const struct pp_support *s = &ev->u.support;
        if (s->severity < 1 || s->severity > 4) {
            INVALID("severity: %d (expected 1..4)", s->severity);
        }
        if (s->has_csat_score && (s->csat_score < 1 || s->csat_score > 5)) {
            INVALID("csat_score: %d (expected 1..5)", s->csat_score);
        }
        if (s->event_type == PP_TICKET_CSAT && !s->has_csat_score) {
            INVALID("csat_score: missing on a csat event");
        }
        break;
    }
    }
    return PP_DECODE_OK;
}

enum pp_decode_err pp_codec_decode(struct pp_codec *codec, const void *buf, size_t len,
                                   struct pp_event *ev, int32_t *schema_id, char *detail,
                                   size_t detail_size)
{
    char scratch[8];
    if (detail == NULL) {
        detail = scratch;
        detail_size = sizeof(scratch);
    }
    detail[0] = '\0';
    int32_t id = -1;
    if (schema_id) {
        *schema_id = -1;
    }
    if (len > codec->lim.max_message_bytes) {
        snprintf(detail, detail_size, "%zu bytes (limit %zu)", len, codec->lim.max_message_bytes);
        if (schema_id && pp_wire_schema_id(buf, len, &id)) {
            *schema_id = id;
        }
        return PP_DECODE_TOO_LARGE;
    }
    if (buf == NULL || len < PP_WIRE_HEADER) {
        snprintf(detail, detail_size, "%zu bytes, shorter than the 5-byte header", len);
        return PP_DECODE_TOO_SHORT;
    }
    if (!pp_wire_schema_id(buf, len, &id)) {
        snprintf(detail, detail_size, "magic byte 0x%02x", ((const unsigned char *)buf)[0]);
        return PP_DECODE_BAD_MAGIC;
    }
    if (schema_id) {
        *schema_id = id;
    }
    struct pp_schema_entry *entry = NULL;
    switch (pp_schema_catalog_lookup(codec->cat, id, &entry, detail, detail_size)) {
    case PP_SCHEMA_FOUND:
        break;
    case PP_SCHEMA_NOT_FOUND:
        return PP_DECODE_UNKNOWN_SCHEMA;
    case PP_SCHEMA_UNAVAILABLE:
        return PP_DECODE_SCHEMA_UNAVAILABLE;
    case PP_SCHEMA_UNPARSABLE:
        return PP_DECODE_SCHEMA_MISMATCH;
    }
    const struct table *t = table_by_kind(entry->kind);
    if (t == NULL) {
        snprintf(detail, detail_size, "schema id %d is %s", (int)id, entry->fullname);
        return PP_DECODE_NOT_AN_EVENT;
    }
    const struct plan *plan = plan_of(codec, entry, t);
    if (plan->t == NULL) {
        snprintf(detail, detail_size, "schema id %d (%s): %s", (int)id, entry->fullname,
                 plan->error);
        return PP_DECODE_SCHEMA_MISMATCH;
    }

    const unsigned char *body = (const unsigned char *)buf + PP_WIRE_HEADER;
    struct dec d = {body,
                    body + (len - PP_WIRE_HEADER),
                    0,
                    &codec->lim,
                    PP_DECODE_OK,
                    PP_DECODE_OK,
                    detail,
                    detail_size};
    *ev = plan->tmpl;
    for (size_t i = 0; i < plan->n; i++) {
        if (!run_step(&d, &plan->steps[i], ev)) {
            return d.err;
        }
    }
    if (d.p != d.end) {
        snprintf(detail, detail_size, "%lld trailing bytes after the record",
                 (long long)(d.end - d.p));
        return PP_DECODE_MALFORMED;
    }
    if (d.soft != PP_DECODE_OK) {
        return d.soft;
    }
    return validate(codec, ev, detail, detail_size);
}

enum pp_decode_err pp_codec_decode_event(struct pp_codec *codec, const void *buf, size_t len,
                                         struct pp_event *ev, char *detail, size_t detail_size)
{
    return pp_codec_decode(codec, buf, len, ev, NULL, detail, detail_size);
}

/* ---- encoding ---------------------------------------------------------- */

static int write_field(const struct fdesc *fd, avro_value_t *field, const struct pp_event *ev)
{
    const char *base = (const char *)ev;
    avro_value_t branch;
    if (fd->optional) {
        bool present;
        memcpy(&present, base + fd->has_off, sizeof(bool));
        if (!present) {
            return avro_value_set_branch(field, 0, &branch) || avro_value_set_null(&branch);
        }
        if (avro_value_set_branch(field, 1, &branch) != 0) {
            return -1;
        }
        field = &branch;
    }
    switch (fd->kind) {
    case F_STR:
        return avro_value_set_string(field, base + fd->off);
    case F_INT: {
        int32_t v;
        memcpy(&v, base + fd->off, sizeof(v));
        return avro_value_set_int(field, v);
    }
    case F_LONG: {
        int64_t v;
        memcpy(&v, base + fd->off, sizeof(v));
        return avro_value_set_long(field, v);
    }
    case F_DOUBLE: {
        double v;
        memcpy(&v, base + fd->off, sizeof(v));
        return avro_value_set_double(field, v);
    }
    case F_BOOL: {
        bool v;
        memcpy(&v, base + fd->off, sizeof(v));
        return avro_value_set_boolean(field, v);
    }
    case F_ENUM: {
        int v;
        memcpy(&v, base + fd->off, sizeof(v));
        int idx = avro_schema_enum_get_by_name(avro_value_get_schema(field), fd->to_name(v));
        return idx < 0 ? -1 : avro_value_set_enum(field, idx);
    }
    }
    return -1;
}

/* Serialises `value` after a wire header into the codec's buffer. */
static const void *finish(struct pp_codec *codec, int32_t id, avro_value_t *value, size_t *len,
                          char *errstr, size_t errstr_size)
{
    size_t size;
    if (avro_value_sizeof(value, &size) != 0) {
        snprintf(errstr, errstr_size, "sizeof: %s", avro_strerror());
        return NULL;
    }
    if (size + PP_WIRE_HEADER > codec->buf_cap) {
        codec->buf_cap = size + PP_WIRE_HEADER;
        codec->buf = pp_xrealloc(codec->buf, codec->buf_cap);
    }
    avro_writer_memory_set_dest(codec->writer, codec->buf + PP_WIRE_HEADER, (int64_t)size);
    if (avro_value_write(codec->writer, value) != 0) {
        snprintf(errstr, errstr_size, "write: %s", avro_strerror());
        return NULL;
    }
    unsigned char *p = (unsigned char *)codec->buf;
    p[0] = 0;
    p[1] = (unsigned char)((uint32_t)id >> 24);
    p[2] = (unsigned char)((uint32_t)id >> 16);
    p[3] = (unsigned char)((uint32_t)id >> 8);
    p[4] = (unsigned char)id;
    *len = size + PP_WIRE_HEADER;
    return codec->buf;
}

const void *pp_codec_encode_event(struct pp_codec *codec, const struct pp_event *ev, size_t *len,
                                  char *errstr, size_t errstr_size)
{
    const struct bound_table *b = NULL;
    for (size_t i = 0; i < NTABLES; i++) {
        if (codec->bound[i].t->type == ev->type) {
            b = &codec->bound[i];
        }
    }
    if (b == NULL) {
        snprintf(errstr, errstr_size, "unknown event type %d", (int)ev->type);
        return NULL;
    }
    avro_value_t *rec = &b->entry->value;
    avro_value_reset(rec);
    for (size_t f = 0; f < b->t->n; f++) {
        avro_value_t field;
        if (avro_value_get_by_index(rec, (size_t)b->index[f], &field, NULL) != 0 ||
            write_field(&b->t->fields[f], &field, ev) != 0) {
            snprintf(errstr, errstr_size, "%s: %s", b->t->fields[f].name, avro_strerror());
            return NULL;
        }
    }
    return finish(codec, b->entry->id, rec, len, errstr, errstr_size);
}

static int set_str(avro_value_t *rec, const char *name, const char *s)
{
    avro_value_t f;
    return avro_value_get_by_name(rec, name, &f, NULL) || avro_value_set_string(&f, s);
}

static int set_opt_str(avro_value_t *rec, const char *name, const char *s)
{
    avro_value_t f, branch;
    if (avro_value_get_by_name(rec, name, &f, NULL) != 0) {
        return -1;
    }
    if (s == NULL || s[0] == '\0') {
        return avro_value_set_branch(&f, 0, &branch) || avro_value_set_null(&branch);
    }
    return avro_value_set_branch(&f, 1, &branch) || avro_value_set_string(&branch, s);
}

static int set_long(avro_value_t *rec, const char *name, int64_t v)
{
    avro_value_t f;
    return avro_value_get_by_name(rec, name, &f, NULL) || avro_value_set_long(&f, v);
}

static int set_int(avro_value_t *rec, const char *name, int32_t v)
{
    avro_value_t f;
    return avro_value_get_by_name(rec, name, &f, NULL) || avro_value_set_int(&f, v);
}

static int set_double(avro_value_t *rec, const char *name, double v)
{
    avro_value_t f;
    return avro_value_get_by_name(rec, name, &f, NULL) || avro_value_set_double(&f, v);
}

static int set_enum(avro_value_t *rec, const char *name, const char *sym)
{
    avro_value_t f;
    if (avro_value_get_by_name(rec, name, &f, NULL) != 0) {
        return -1;
    }
    int idx = avro_schema_enum_get_by_name(avro_value_get_schema(&f), sym);
    return idx < 0 ? -1 : avro_value_set_enum(&f, idx);
}

const void *pp_codec_encode_alert(struct pp_codec *codec, const struct pp_alert *a,
                                  const char *details_json, size_t *len, char *errstr,
                                  size_t errstr_size)
{
    struct pp_schema_entry *e = pp_schema_catalog_by_kind(codec->cat, PP_SCHEMA_ALERT);
    avro_value_t *rec = &e->value;
    avro_value_reset(rec);
    int rc = set_str(rec, "alert_id", a->alert_id) || set_str(rec, "dedup_key", a->dedup_key) ||
             set_str(rec, "rule_id", a->rule_id) ||
             set_str(rec, "model_version", PP_MODEL_VERSION) ||
             set_enum(rec, "status", pp_alert_status_name(a->status)) ||
             set_enum(rec, "severity", pp_severity_name(a->severity)) ||
             set_enum(rec, "scope", pp_scope_name(a->scope)) || set_str(rec, "tenant", a->tenant) ||
             set_str(rec, "partner_id", a->partner_id) ||
             set_opt_str(rec, "customer_id", a->customer_id) ||
             set_long(rec, "first_seen_at", pp_day_to_ms(a->first_seen_day)) ||
             set_long(rec, "fired_at", pp_day_to_ms(a->fired_day)) ||
             set_long(rec, "last_evaluated_at", pp_day_to_ms(a->eval_day)) ||
             set_int(rec, "reopen_count", a->reopen_count) ||
             set_opt_str(rec, "parent_alert_id", a->parent_alert_id) ||
             set_double(rec, "value", a->value) || set_double(rec, "threshold", a->threshold) ||
             set_int(rec, "window_days", a->window_days) || set_str(rec, "summary", a->summary) ||
             set_str(rec, "details_json", details_json ? details_json : "{}");
    if (rc != 0) {
        snprintf(errstr, errstr_size, "alert: %s", avro_strerror());
        return NULL;
    }
    return finish(codec, e->id, rec, len, errstr, errstr_size);
}
