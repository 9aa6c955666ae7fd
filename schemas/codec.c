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

static const char *deal_event_name(int v)
{
    return pp_deal_event_name((enum pp_deal_event)v);
}
static const char *deal_kind_name(int v)
{
    return pp_deal_kind_name((enum pp_deal_kind)v);
}
static const char *support_event_name(int v)
{
    return pp_support_event_name((enum pp_support_event)v);
}

static const struct fdesc deal_fields[] = {
    STR("event_id", event_id, true),
    NUM("occurred_at", F_LONG, occurred_at_ms),
    STR("deal_id", u.deal.deal_id, true),
    ENUM("event_type", u.deal.event_type, pp_deal_event_from_name, deal_event_name),
    STR("partner_id", u.deal.partner_id, true),
    STR("customer_id", u.deal.customer_id, true),
    STR("product_id", u.deal.product_id, true),
    ENUM("kind", u.deal.kind, pp_deal_kind_from_name, deal_kind_name),
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
    ENUM("event_type", u.support.event_type, pp_support_event_from_name, support_event_name),
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
    avro_reader_t reader;
    avro_writer_t writer;
    char *buf;
    size_t buf_cap;
};

const char *pp_decode_reason(enum pp_decode_err err)
{
    static const char *const names[PP_DECODE__COUNT] = {
        "ok",           "too_short",      "bad_magic",     "too_large", "unknown_schema_id",
        "not_an_event", "malformed_avro", "invalid_value",
    };
    return (unsigned)err < PP_DECODE__COUNT ? names[err] : "unknown";
}

void pp_codec_limits_defaults(struct pp_codec_limits *lim)
{
    lim->max_message_bytes = 1024 * 1024;
    lim->min_event_ms = pp_day_to_ms(pp_day_from_civil(2000, 1, 1));
    lim->max_event_ms = pp_day_to_ms(pp_day_from_civil(2100, 1, 1));
}

struct pp_codec *pp_codec_new(struct pp_schema_catalog *cat, const struct pp_codec_limits *lim)
{
    struct pp_codec *codec = pp_xcalloc(1, sizeof(*codec));
    codec->cat = cat;
    if (lim) {
        codec->lim = *lim;
    }
    else {
        pp_codec_limits_defaults(&codec->lim);
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
    codec->reader = avro_reader_memory("", 0);
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
    if (codec->reader) {
        avro_reader_free(codec->reader);
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

static const struct bound_table *bound_by_kind(const struct pp_codec *codec,
                                               enum pp_schema_kind kind)
{
    for (size_t i = 0; i < NTABLES; i++) {
        if (codec->bound[i].t->kind == kind) {
            return &codec->bound[i];
        }
    }
    return NULL;
}

/* ---- bounded pre-validation ---------------------------------------------
 *
 * avro-c allocates whatever a record declares (a string of 2^63 bytes, an
 * array of a billion nulls) before noticing the input is short, and reads an
 * enum symbol for any index. So every body is first walked against its
 * writer schema here, allocating nothing: every length must fit in the bytes
 * that remain, every enum index and union branch must exist, collections are
 * capped, nesting is bounded. Only a body that passes is given to avro-c.
 */

#define MAX_DEPTH 32
#define MAX_ITEMS 100000 /* array/map items per record */

struct walk {
    const unsigned char *p;
    const unsigned char *end;
    size_t items;
    char *detail;
    size_t detail_size;
};

static bool read_varlong(struct walk *w, int64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (w->p >= w->end) {
            return false;
        }
        unsigned char b = *w->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0) {
            *out = (int64_t)(v >> 1) ^ -(int64_t)(v & 1); /* zig-zag */
            return true;
        }
    }
    return false; /* more than 10 bytes */
}

#define WALK_FAIL(...)                                                                             \
    do {                                                                                           \
        snprintf(w->detail, w->detail_size, __VA_ARGS__);                                          \
        return false;                                                                              \
    } while (0)

static bool walk_value(struct walk *w, avro_schema_t s, int depth, const char *name)
{
    int64_t n = 0;
    if (depth > MAX_DEPTH) {
        WALK_FAIL("%s: nested deeper than %d", name, MAX_DEPTH);
    }
    switch (avro_typeof(s)) {
    case AVRO_NULL:
        return true;
    case AVRO_BOOLEAN:
        if (w->p >= w->end || *w->p > 1) {
            WALK_FAIL("%s: bad boolean", name);
        }
        w->p++;
        return true;
    case AVRO_INT32:
        if (!read_varlong(w, &n) || n < INT32_MIN || n > INT32_MAX) {
            WALK_FAIL("%s: bad or truncated int", name);
        }
        return true;
    case AVRO_INT64:
        if (!read_varlong(w, &n)) {
            WALK_FAIL("%s: bad or truncated long", name);
        }
        return true;
    case AVRO_FLOAT:
    case AVRO_DOUBLE: {
        size_t sz = avro_typeof(s) == AVRO_FLOAT ? 4 : 8;
        if ((size_t)(w->end - w->p) < sz) {
            WALK_FAIL("%s: truncated number", name);
        }
        w->p += sz;
        return true;
    }
    case AVRO_STRING:
    case AVRO_BYTES:
        if (!read_varlong(w, &n) || n < 0 || n > w->end - w->p) {
            WALK_FAIL("%s: length %lld does not fit the %lld remaining bytes", name, (long long)n,
                      (long long)(w->end - w->p));
        }
        w->p += n;
        return true;
    case AVRO_FIXED:
        n = avro_schema_fixed_size(s);
        if (n > w->end - w->p) {
            WALK_FAIL("%s: truncated fixed", name);
        }
        w->p += n;
        return true;
    case AVRO_ENUM:
        if (!read_varlong(w, &n) || n < 0 || n >= avro_schema_enum_number_of_symbols(s)) {
            WALK_FAIL("%s: enum index %lld out of range", name, (long long)n);
        }
        return true;
    case AVRO_UNION:
        if (!read_varlong(w, &n) || n < 0 || (size_t)n >= avro_schema_union_size(s)) {
            WALK_FAIL("%s: union branch %lld out of range", name, (long long)n);
        }
        return walk_value(w, avro_schema_union_branch(s, (int)n), depth + 1, name);
    case AVRO_RECORD:
        for (size_t i = 0; i < avro_schema_record_size(s); i++) {
            const char *fname = avro_schema_record_field_name(s, (int)i);
            if (!walk_value(w, avro_schema_record_field_get_by_index(s, (int)i), depth + 1,
                            fname)) {
                return false;
            }
        }
        return true;
    case AVRO_ARRAY:
    case AVRO_MAP:
        for (;;) {
            if (!read_varlong(w, &n)) {
                WALK_FAIL("%s: truncated block count", name);
            }
            if (n == 0) {
                return true;
            }
            if (n < 0) { /* a negative count is followed by the block's byte size */
                int64_t bytes;
                if (n == INT64_MIN || !read_varlong(w, &bytes) || bytes < 0) {
                    WALK_FAIL("%s: bad block header", name);
                }
                n = -n;
            }
            if (n > MAX_ITEMS || w->items + (size_t)n > MAX_ITEMS) {
                WALK_FAIL("%s: more than %d items", name, MAX_ITEMS);
            }
            w->items += (size_t)n;
            for (int64_t i = 0; i < n; i++) {
                if (avro_typeof(s) == AVRO_MAP) {
                    int64_t klen;
                    if (!read_varlong(w, &klen) || klen < 0 || klen > w->end - w->p) {
                        WALK_FAIL("%s: bad map key", name);
                    }
                    w->p += klen;
                }
                avro_schema_t item = avro_typeof(s) == AVRO_MAP ? avro_schema_map_values(s)
                                                                : avro_schema_array_items(s);
                if (!walk_value(w, item, depth + 1, name)) {
                    return false;
                }
            }
        }
    case AVRO_LINK:
        return walk_value(w, avro_schema_link_target(s), depth + 1, name);
    }
    WALK_FAIL("%s: unsupported Avro type", name);
}

/* true when `len` bytes are exactly one well-formed value of `schema`. */
static bool prevalidate(avro_schema_t schema, const void *buf, size_t len, char *detail,
                        size_t detail_size)
{
    struct walk w = {buf, (const unsigned char *)buf + len, 0, detail, detail_size};
    if (!walk_value(&w, schema, 0, "record")) {
        return false;
    }
    if (w.p != w.end) {
        snprintf(detail, detail_size, "%lld trailing bytes after the record",
                 (long long)(w.end - w.p));
        return false;
    }
    return true;
}

/* Reads one field of a decoded record into the event. */
static enum pp_decode_err read_field(const struct fdesc *fd, avro_value_t *field,
                                     struct pp_event *ev, char *detail, size_t detail_size)
{
    char *base = (char *)ev;
    avro_value_t branch;
    if (fd->optional) {
        if (avro_value_get_current_branch(field, &branch) != 0) {
            snprintf(detail, detail_size, "%s: no union branch", fd->name);
            return PP_DECODE_MALFORMED;
        }
        bool present = avro_value_get_type(&branch) != AVRO_NULL;
        memcpy(base + fd->has_off, &present, sizeof(bool));
        if (!present) {
            return PP_DECODE_OK;
        }
        field = &branch;
    }
    int rc = 0;
    switch (fd->kind) {
    case F_STR: {
        const char *s = NULL;
        size_t n = 0;
        rc = avro_value_get_string(field, &s, &n);
        if (rc == 0) {
            size_t len = n ? n - 1 : 0; /* avro-c counts the NUL */
            if (len >= fd->size || memchr(s, '\0', len) != NULL) {
                snprintf(detail, detail_size, "%s: string of %zu bytes (at most %zu)", fd->name,
                         len, fd->size - 1);
                return PP_DECODE_INVALID;
            }
            memcpy(base + fd->off, s, len);
            base[fd->off + len] = '\0';
            if (fd->required && len == 0) {
                snprintf(detail, detail_size, "%s: empty", fd->name);
                return PP_DECODE_INVALID;
            }
        }
        break;
    }
    case F_INT: {
        int32_t v;
        rc = avro_value_get_int(field, &v);
        memcpy(base + fd->off, &v, sizeof(v));
        break;
    }
    case F_LONG: {
        int64_t v;
        rc = avro_value_get_long(field, &v);
        memcpy(base + fd->off, &v, sizeof(v));
        break;
    }
    case F_DOUBLE: {
        double v;
        rc = avro_value_get_double(field, &v);
        memcpy(base + fd->off, &v, sizeof(v));
        break;
    }
    case F_BOOL: {
        int v;
        rc = avro_value_get_boolean(field, &v);
        bool b = v != 0;
        memcpy(base + fd->off, &b, sizeof(b));
        break;
    }
    case F_ENUM: {
        int idx;
        rc = avro_value_get_enum(field, &idx);
        if (rc == 0) {
            /* By symbol name, not by position (DESIGN.md §3). */
            const char *sym = avro_schema_enum_get(avro_value_get_schema(field), idx);
            int v = sym ? fd->from_name(sym) : -1;
            if (v < 0) {
                snprintf(detail, detail_size, "%s: unknown symbol %s", fd->name,
                         sym ? sym : "(none)");
                return PP_DECODE_INVALID;
            }
            memcpy(base + fd->off, &v, sizeof(int));
        }
        break;
    }
    }
    if (rc != 0) {
        snprintf(detail, detail_size, "%s: %s", fd->name, avro_strerror());
        return PP_DECODE_MALFORMED;
    }
    return PP_DECODE_OK;
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

enum pp_decode_err pp_codec_decode_event(struct pp_codec *codec, const void *buf, size_t len,
                                         struct pp_event *ev, char *detail, size_t detail_size)
{
    char scratch[8];
    if (detail == NULL) {
        detail = scratch;
        detail_size = sizeof(scratch);
    }
    detail[0] = '\0';
    if (len > codec->lim.max_message_bytes) {
        snprintf(detail, detail_size, "%zu bytes (limit %zu)", len, codec->lim.max_message_bytes);
        return PP_DECODE_TOO_LARGE;
    }
    if (buf == NULL || len < PP_WIRE_HEADER) {
        snprintf(detail, detail_size, "%zu bytes, shorter than the 5-byte header", len);
        return PP_DECODE_TOO_SHORT;
    }
    int32_t id;
    if (!pp_wire_schema_id(buf, len, &id)) {
        snprintf(detail, detail_size, "magic byte 0x%02x", ((const unsigned char *)buf)[0]);
        return PP_DECODE_BAD_MAGIC;
    }
    struct pp_schema_entry *entry = pp_schema_catalog_get(codec->cat, id);
    if (entry == NULL) {
        snprintf(detail, detail_size, "schema id %d", id);
        return PP_DECODE_UNKNOWN_SCHEMA;
    }
    const struct bound_table *b = bound_by_kind(codec, entry->kind);
    if (b == NULL) {
        snprintf(detail, detail_size, "schema id %d is %s", id, entry->fullname);
        return PP_DECODE_NOT_AN_EVENT;
    }

    const char *body = (const char *)buf + PP_WIRE_HEADER;
    size_t body_len = len - PP_WIRE_HEADER;
    if (!prevalidate(entry->schema, body, body_len, detail, detail_size)) {
        return PP_DECODE_MALFORMED;
    }
    avro_value_reset(&entry->value);
    avro_reader_memory_set_source(codec->reader, body, (int64_t)body_len);
    if (avro_value_read(codec->reader, &entry->value) != 0) {
        snprintf(detail, detail_size, "%s", avro_strerror());
        avro_set_error("%s", ""); /* avro-c appends to its error text otherwise */
        return PP_DECODE_MALFORMED;
    }

    memset(ev, 0, sizeof(*ev));
    ev->type = b->t->type;
    for (size_t f = 0; f < b->t->n; f++) {
        avro_value_t field;
        if (avro_value_get_by_index(&entry->value, (size_t)b->index[f], &field, NULL) != 0) {
            snprintf(detail, detail_size, "%s: missing", b->t->fields[f].name);
            return PP_DECODE_MALFORMED;
        }
        enum pp_decode_err err = read_field(&b->t->fields[f], &field, ev, detail, detail_size);
        if (err != PP_DECODE_OK) {
            return err;
        }
    }
    return validate(codec, ev, detail, detail_size);
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
             set_opt_str(rec, "parent_alert_id", NULL) || set_double(rec, "value", a->value) ||
             set_double(rec, "threshold", a->threshold) ||
             set_int(rec, "window_days", a->window_days) || set_str(rec, "summary", a->summary) ||
             set_str(rec, "details_json", details_json ? details_json : "{}");
    if (rc != 0) {
        snprintf(errstr, errstr_size, "alert: %s", avro_strerror());
        return NULL;
    }
    return finish(codec, e->id, rec, len, errstr, errstr_size);
}
