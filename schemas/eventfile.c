/*
 * eventfile.c — JSON Lines event files ⇄ struct pp_event. See eventfile.h.
 *
 * One table per event type lists each member: its JSON name (the Avro field
 * name), how it is spelled in JSON, where it lives in struct pp_event, whether
 * it is optional (an Avro ["null", T] union) and whether it may be omitted
 * (an Avro default). The same table drives reading and writing, which is what
 * makes the writer the reader's exact inverse. Domain validation is the Avro
 * decoder's own: the parsed event is encoded and decoded through pp_codec.
 */
#include "eventfile.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "catalog.h"
#include "codec.h"
#include "ptime.h"

enum fk { K_STR, K_TIME, K_DATE, K_INT, K_LONG, K_DOUBLE, K_BOOL, K_ENUM };

struct fd {
    const char *name;
    enum fk kind;
    size_t off;       /* in struct pp_event */
    size_t size;      /* K_STR: capacity */
    size_t has_off;   /* optional: presence flag */
    bool optional;    /* may be null; absent means "not present" */
    bool required;    /* no Avro default: must be present */
    long long idef;   /* Avro default of numeric fields */
    const char *sdef; /* Avro default of string fields */
    int (*from_name)(const char *);
    const char *(*to_name)(int);
};

#define EV(m) offsetof(struct pp_event, m)
#define SZ(m) sizeof(((struct pp_event *)0)->m)
#define RSTR(n, m)                                                                                 \
    {                                                                                              \
        n, K_STR, EV(m), SZ(m), 0, false, true, 0, NULL, NULL, NULL                                \
    }
#define DSTR(n, m, def)                                                                            \
    {                                                                                              \
        n, K_STR, EV(m), SZ(m), 0, false, false, 0, def, NULL, NULL                                \
    }
#define OSTR(n, m, h)                                                                              \
    {                                                                                              \
        n, K_STR, EV(m), SZ(m), EV(h), true, false, 0, NULL, NULL, NULL                            \
    }
#define RNUM(n, k, m)                                                                              \
    {                                                                                              \
        n, k, EV(m), 0, 0, false, true, 0, NULL, NULL, NULL                                        \
    }
#define DNUM(n, k, m, def)                                                                         \
    {                                                                                              \
        n, k, EV(m), 0, 0, false, false, def, NULL, NULL, NULL                                     \
    }
#define ONUM(n, k, m, h)                                                                           \
    {                                                                                              \
        n, k, EV(m), 0, EV(h), true, false, 0, NULL, NULL, NULL                                    \
    }
#define RENUM(n, m, from, to)                                                                      \
    {                                                                                              \
        n, K_ENUM, EV(m), 0, 0, false, true, 0, NULL, from, to                                     \
    }

static const struct fd deal_fields[] = {
    RSTR("event_id", event_id),
    RNUM("occurred_at", K_TIME, occurred_at_ms),
    RSTR("deal_id", u.deal.deal_id),
    RENUM("event_type", u.deal.event_type, pp_deal_event_from_name, pp_deal_event_name),
    RSTR("partner_id", u.deal.partner_id),
    RSTR("customer_id", u.deal.customer_id),
    RSTR("product_id", u.deal.product_id),
    RENUM("kind", u.deal.kind, pp_deal_kind_from_name, pp_deal_kind_name),
    RNUM("close_date", K_DATE, u.deal.close_date),
    ONUM("start_date", K_DATE, u.deal.start_date, u.deal.has_start_date),
    DNUM("term_months", K_INT, u.deal.term_months, 12),
    DNUM("seats", K_INT, u.deal.seats, 0),
    RNUM("amount", K_LONG, u.deal.amount),
    ONUM("list_amount", K_LONG, u.deal.list_amount, u.deal.has_list_amount),
    ONUM("discount_pct", K_DOUBLE, u.deal.discount_pct, u.deal.has_discount_pct),
    DSTR("currency", u.deal.currency, "USD"),
    ONUM("commit_units", K_LONG, u.deal.commit_units, u.deal.has_commit_units),
    ONUM("quarter_end", K_BOOL, u.deal.quarter_end, u.deal.has_quarter_end),
    DSTR("fiscal_quarter", u.deal.fiscal_quarter, ""),
};

static const struct fd consumption_fields[] = {
    RSTR("event_id", event_id),
    RNUM("occurred_at", K_TIME, occurred_at_ms),
    RSTR("customer_id", u.consumption.customer_id),
    RSTR("product_id", u.consumption.product_id),
    RNUM("as_of", K_DATE, u.consumption.as_of),
    DNUM("licenses_entitled", K_INT, u.consumption.licenses_entitled, 0),
    DNUM("licenses_active", K_INT, u.consumption.licenses_active, 0),
    ONUM("consumption_units", K_DOUBLE, u.consumption.consumption_units,
         u.consumption.has_consumption_units),
    ONUM("period_start", K_DATE, u.consumption.period_start, u.consumption.has_period_start),
    ONUM("period_end", K_DATE, u.consumption.period_end, u.consumption.has_period_end),
};

static const struct fd support_fields[] = {
    RSTR("event_id", event_id),
    RNUM("occurred_at", K_TIME, occurred_at_ms),
    RSTR("ticket_id", u.support.ticket_id),
    RSTR("customer_id", u.support.customer_id),
    OSTR("product_id", u.support.product_id, u.support.has_product_id),
    RENUM("event_type", u.support.event_type, pp_support_event_from_name, pp_support_event_name),
    DNUM("severity", K_INT, u.support.severity, 3),
    ONUM("csat_score", K_INT, u.support.csat_score, u.support.has_csat_score),
    OSTR("vendor_incident_id", u.support.vendor_incident_id, u.support.has_vendor_incident_id),
};

struct table {
    enum pp_event_type type;
    const struct fd *fields;
    size_t n;
};
#define NF(a) (sizeof(a) / sizeof((a)[0]))
static const struct table tables[] = {
    {PP_EV_DEAL, deal_fields, NF(deal_fields)},
    {PP_EV_CONSUMPTION, consumption_fields, NF(consumption_fields)},
    {PP_EV_SUPPORT, support_fields, NF(support_fields)},
};

static const struct table *table_for(enum pp_event_type t)
{
    for (size_t i = 0; i < NF(tables); i++) {
        if (tables[i].type == t) {
            return &tables[i];
        }
    }
    return NULL;
}

struct pp_eventfile_reader {
    FILE *fp;
    bool owns_fp;
    char name[256];
    unsigned long line;
    char *buf;
    size_t cap;
    struct pp_schema_catalog *cat;
    struct pp_codec *codec;
    struct pp_event scratch;
};

/* ---- time and date ------------------------------------------------------- */

static bool digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/* "YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)"; the fraction is cut
 * to milliseconds. */
static bool parse_time(const char *s, int64_t *ms)
{
    size_t len = strlen(s);
    int32_t day;
    char date[11];
    int hh, mi, ss;
    if (len < 20 || s[10] != 'T' || s[13] != ':' || s[16] != ':') {
        return false;
    }
    memcpy(date, s, 10);
    date[10] = '\0';
    if (!pp_day_parse(date, &day) || !digits(s + 11, 2, &hh) || !digits(s + 14, 2, &mi) ||
        !digits(s + 17, 2, &ss) || hh > 23 || mi > 59 || ss > 59) {
        return false;
    }
    const char *p = s + 19;
    int64_t frac = 0;
    if (*p == '.') {
        p++;
        int n = 0;
        while (*p >= '0' && *p <= '9') {
            if (n < 3) {
                frac = frac * 10 + (*p - '0');
            }
            n++;
            p++;
        }
        if (n == 0 || n > 9) {
            return false;
        }
        for (; n < 3; n++) {
            frac *= 10;
        }
    }
    int64_t offset = 0;
    if (*p == 'Z') {
        p++;
    }
    else if (*p == '+' || *p == '-') {
        int oh, om;
        if (strlen(p) != 6 || p[3] != ':' || !digits(p + 1, 2, &oh) || !digits(p + 4, 2, &om) ||
            oh > 23 || om > 59) {
            return false;
        }
        offset = (int64_t)(oh * 60 + om) * 60000 * (*p == '-' ? -1 : 1);
        p += 6;
    }
    else {
        return false;
    }
    if (*p != '\0') {
        return false;
    }
    *ms = pp_day_to_ms(day) + (int64_t)(hh * 3600 + mi * 60 + ss) * 1000 + frac - offset;
    return true;
}

static void format_time(int64_t ms, char *buf, size_t size)
{
    int32_t day = pp_day_from_ms(ms);
    int64_t rem = ms - pp_day_to_ms(day);
    char date[11];
    pp_day_format(day, date, sizeof(date));
    int s = (int)(rem / 1000), milli = (int)(rem % 1000);
    if (milli != 0) {
        snprintf(buf, size, "%sT%02d:%02d:%02d.%03dZ", date, s / 3600, s / 60 % 60, s % 60, milli);
    }
    else {
        snprintf(buf, size, "%sT%02d:%02d:%02dZ", date, s / 3600, s / 60 % 60, s % 60);
    }
}

/* ---- reading ------------------------------------------------------------- */

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        snprintf(what, what_size, __VA_ARGS__);                                                    \
        goto out;                                                                                  \
    } while (0)

static int read_member(const struct fd *f, json_t *v, struct pp_event *ev, char *what,
                       size_t what_size)
{
    char *base = (char *)ev;
    int rc = -1;
    if (json_is_null(v)) {
        if (!f->optional) {
            FAIL("%s: null is not allowed (the field is not optional)", f->name);
        }
        return 0; /* absent */
    }
    switch (f->kind) {
    case K_STR: {
        if (!json_is_string(v)) {
            FAIL("%s: expected a string", f->name);
        }
        const char *s = json_string_value(v);
        size_t len = json_string_length(v);
        if (len >= f->size || memchr(s, '\0', len) != NULL) {
            FAIL("%s: longer than %zu bytes", f->name, f->size - 1);
        }
        memcpy(base + f->off, s, len);
        base[f->off + len] = '\0';
        break;
    }
    case K_TIME: {
        int64_t ms;
        if (json_is_integer(v)) {
            ms = (int64_t)json_integer_value(v);
        }
        else if (!json_is_string(v) || !parse_time(json_string_value(v), &ms)) {
            FAIL("%s: expected an ISO-8601 UTC time (2025-06-19T09:00:00Z) or epoch "
                 "milliseconds",
                 f->name);
        }
        memcpy(base + f->off, &ms, sizeof(ms));
        break;
    }
    case K_DATE: {
        int32_t day;
        if (json_is_integer(v)) {
            /* Years 0000..9999, what "YYYY-MM-DD" can spell: the writer
             * writes the string, and must be read back. */
            json_int_t d = json_integer_value(v);
            if (d < pp_day_from_civil(0, 1, 1) || d > pp_day_from_civil(9999, 12, 31)) {
                FAIL("%s: %lld days is outside years 0000..9999", f->name, (long long)d);
            }
            day = (int32_t)d;
        }
        else if (!json_is_string(v) || !pp_day_parse(json_string_value(v), &day)) {
            FAIL("%s: expected a date YYYY-MM-DD", f->name);
        }
        memcpy(base + f->off, &day, sizeof(day));
        break;
    }
    case K_INT: {
        if (!json_is_integer(v)) {
            FAIL("%s: expected an integer", f->name);
        }
        json_int_t x = json_integer_value(v);
        if (x < INT32_MIN || x > INT32_MAX) {
            FAIL("%s: %lld does not fit a 32-bit int", f->name, (long long)x);
        }
        int32_t i = (int32_t)x;
        memcpy(base + f->off, &i, sizeof(i));
        break;
    }
    case K_LONG: {
        if (!json_is_integer(v)) {
            FAIL("%s: expected an integer", f->name);
        }
        int64_t x = (int64_t)json_integer_value(v);
        memcpy(base + f->off, &x, sizeof(x));
        break;
    }
    case K_DOUBLE: {
        if (!json_is_number(v)) {
            FAIL("%s: expected a number", f->name);
        }
        double x = json_number_value(v);
        memcpy(base + f->off, &x, sizeof(x));
        break;
    }
    case K_BOOL: {
        if (!json_is_boolean(v)) {
            FAIL("%s: expected true or false", f->name);
        }
        bool b = json_is_true(v);
        memcpy(base + f->off, &b, sizeof(b));
        break;
    }
    case K_ENUM: {
        int e = json_is_string(v) ? f->from_name(json_string_value(v)) : -1;
        if (e < 0) {
            FAIL("%s: expected one of the symbols of its Avro enum", f->name);
        }
        /* enum storage in struct pp_event is an int-sized enum */
        int tmp = e;
        memcpy(base + f->off, &tmp, sizeof(tmp));
        break;
    }
    }
    if (f->optional) {
        bool t = true;
        memcpy(base + f->has_off, &t, sizeof(t));
    }
    rc = 0;
out:
    return rc;
}

static void set_default(const struct fd *f, struct pp_event *ev)
{
    char *base = (char *)ev;
    if (f->kind == K_STR) {
        snprintf(base + f->off, f->size, "%s", f->sdef ? f->sdef : "");
    }
    else if (f->kind == K_INT) {
        int32_t i = (int32_t)f->idef;
        memcpy(base + f->off, &i, sizeof(i));
    }
    /* other kinds have no Avro default in the schemas: they are required */
}

int pp_eventfile_parse(struct pp_eventfile_reader *rd, const char *line, size_t len,
                       struct pp_event *ev, char *what, size_t what_size)
{
    int rc = -1;
    json_error_t jerr;
    json_t *root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    memset(ev, 0, sizeof(*ev));
    if (root == NULL) {
        FAIL("invalid JSON at column %d: %s", jerr.column, jerr.text);
    }
    if (!json_is_object(root)) {
        FAIL("expected a JSON object");
    }
    json_t *type = json_object_get(root, "type");
    if (!json_is_string(type)) {
        FAIL("missing \"type\" (deal, license_consumption or support)");
    }
    const char *tname = json_string_value(type);
    const struct table *t = NULL;
    for (size_t i = 0; i < NF(tables); i++) {
        if (strcmp(pp_event_type_name(tables[i].type), tname) == 0) {
            t = &tables[i];
        }
    }
    if (t == NULL) {
        FAIL("type: unknown event type (expected deal, license_consumption or support)");
    }
    ev->type = t->type;
    /* Unknown members first: a misspelt optional field must not pass as absent. */
    const char *key;
    json_t *value;
    json_object_foreach(root, key, value)
    {
        bool known = strcmp(key, "type") == 0;
        for (size_t i = 0; i < t->n && !known; i++) {
            known = strcmp(t->fields[i].name, key) == 0;
        }
        if (!known) {
            FAIL("unknown field \"%.64s\" for a %s event", key, tname);
        }
    }
    for (size_t i = 0; i < t->n; i++) {
        const struct fd *f = &t->fields[i];
        json_t *v = json_object_get(root, f->name);
        if (v == NULL) {
            if (f->required) {
                FAIL("%s: missing (required)", f->name);
            }
            if (!f->optional) {
                set_default(f, ev);
            }
            continue;
        }
        if (read_member(f, v, ev, what, what_size) != 0) {
            goto out;
        }
    }
    /* The Avro decoder's domain rules, exactly: encode and decode. */
    char err[256];
    size_t blen;
    const void *buf = pp_codec_encode_event(rd->codec, ev, &blen, err, sizeof(err));
    if (buf == NULL) {
        FAIL("cannot encode: %s", err);
    }
    if (pp_codec_decode_event(rd->codec, buf, blen, &rd->scratch, err, sizeof(err)) !=
        PP_DECODE_OK) {
        FAIL("%s", err);
    }
    rc = 0;
out:
    json_decref(root);
    return rc;
}

struct pp_eventfile_reader *pp_eventfile_reader_new(FILE *fp, const char *name, char *errstr,
                                                    size_t errstr_size)
{
    struct pp_eventfile_reader *rd = calloc(1, sizeof(*rd));
    if (rd == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    rd->fp = fp;
    snprintf(rd->name, sizeof(rd->name), "%s", name);
    rd->cat = pp_schema_catalog_new(errstr, errstr_size);
    if (rd->cat == NULL) {
        pp_eventfile_reader_destroy(rd);
        return NULL;
    }
    struct pp_codec_limits lim;
    pp_codec_limits_defaults(&lim);
    rd->codec = pp_codec_new(rd->cat, &lim);
    if (rd->codec == NULL) {
        snprintf(errstr, errstr_size, "cannot create the Avro codec");
        pp_eventfile_reader_destroy(rd);
        return NULL;
    }
    return rd;
}

struct pp_eventfile_reader *pp_eventfile_open(const char *path, char *errstr, size_t errstr_size)
{
    bool is_stdin = strcmp(path, "-") == 0;
    FILE *fp = is_stdin ? stdin : fopen(path, "r");
    if (fp == NULL) {
        snprintf(errstr, errstr_size, "%s: %s", path, strerror(errno));
        return NULL;
    }
    struct pp_eventfile_reader *rd =
        pp_eventfile_reader_new(fp, is_stdin ? "<stdin>" : path, errstr, errstr_size);
    if (rd == NULL) {
        if (!is_stdin) {
            fclose(fp);
        }
        return NULL;
    }
    rd->owns_fp = !is_stdin;
    return rd;
}

void pp_eventfile_reader_destroy(struct pp_eventfile_reader *rd)
{
    if (rd == NULL) {
        return;
    }
    if (rd->owns_fp && rd->fp) {
        fclose(rd->fp);
    }
    pp_codec_destroy(rd->codec);
    pp_schema_catalog_destroy(rd->cat);
    free(rd->buf);
    free(rd);
}

unsigned long pp_eventfile_line(const struct pp_eventfile_reader *rd)
{
    return rd->line;
}

static bool blank(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') {
            return false;
        }
    }
    return true;
}

enum pp_eventfile_rc pp_eventfile_next(struct pp_eventfile_reader *rd, struct pp_event *ev,
                                       char *errstr, size_t errstr_size)
{
    for (;;) {
        errno = 0;
        ssize_t n = getline(&rd->buf, &rd->cap, rd->fp);
        if (n < 0) {
            if (ferror(rd->fp)) {
                snprintf(errstr, errstr_size, "%s:%lu: read error: %s", rd->name, rd->line + 1,
                         strerror(errno ? errno : EIO));
                return PP_EVENTFILE_IO;
            }
            return PP_EVENTFILE_EOF;
        }
        rd->line++;
        size_t len = (size_t)n;
        if (len > 0 && rd->buf[len - 1] == '\n') {
            len--;
        }
        if (len > 0 && rd->buf[len - 1] == '\r') {
            len--;
        }
        if (blank(rd->buf, len)) {
            continue;
        }
        if (len > PP_EVENTFILE_MAX_LINE) {
            snprintf(errstr, errstr_size, "%s:%lu: line is longer than %d bytes", rd->name,
                     rd->line, PP_EVENTFILE_MAX_LINE);
            return PP_EVENTFILE_BAD_LINE;
        }
        char what[384];
        if (pp_eventfile_parse(rd, rd->buf, len, ev, what, sizeof(what)) != 0) {
            snprintf(errstr, errstr_size, "%s:%lu: %s", rd->name, rd->line, what);
            return PP_EVENTFILE_BAD_LINE;
        }
        return PP_EVENTFILE_OK;
    }
}

/* ---- writing ------------------------------------------------------------- */

/* The fewest significant digits (15..17) that give every double of the event
 * back exactly: "0.34", not "0.34000000000000002", and still lossless. */
static int real_precision(const struct table *t, const struct pp_event *ev)
{
    int prec = 15;
    const char *base = (const char *)ev;
    for (size_t i = 0; i < t->n; i++) {
        const struct fd *f = &t->fields[i];
        if (f->kind != K_DOUBLE) {
            continue;
        }
        double x;
        memcpy(&x, base + f->off, sizeof(x));
        for (int p = prec; p <= 17; p++) {
            char tmp[40];
            snprintf(tmp, sizeof(tmp), "%.*g", p, x);
            if (strtod(tmp, NULL) == x) {
                prec = p;
                break;
            }
            prec = 17;
        }
    }
    return prec;
}

static json_t *build(const struct pp_event *ev, const struct table *t)
{
    const char *base = (const char *)ev;
    json_t *o = json_object();
    if (o == NULL || json_object_set_new(o, "type", json_string(pp_event_type_name(ev->type)))) {
        goto fail;
    }
    for (size_t i = 0; i < t->n; i++) {
        const struct fd *f = &t->fields[i];
        if (f->optional) {
            bool has;
            memcpy(&has, base + f->has_off, sizeof(has));
            if (!has) {
                continue;
            }
        }
        json_t *v = NULL;
        switch (f->kind) {
        case K_STR:
            v = json_stringn(base + f->off, strnlen(base + f->off, f->size));
            break;
        case K_TIME: {
            int64_t ms;
            char buf[40];
            memcpy(&ms, base + f->off, sizeof(ms));
            format_time(ms, buf, sizeof(buf));
            v = json_string(buf);
            break;
        }
        case K_DATE: {
            int32_t day;
            char buf[16];
            memcpy(&day, base + f->off, sizeof(day));
            pp_day_format(day, buf, sizeof(buf));
            v = json_string(buf);
            break;
        }
        case K_INT: {
            int32_t x;
            memcpy(&x, base + f->off, sizeof(x));
            v = json_integer(x);
            break;
        }
        case K_LONG: {
            int64_t x;
            memcpy(&x, base + f->off, sizeof(x));
            v = json_integer((json_int_t)x);
            break;
        }
        case K_DOUBLE: {
            double x;
            memcpy(&x, base + f->off, sizeof(x));
            v = json_real(x); /* NULL for NaN and infinities: not JSON */
            break;
        }
        case K_BOOL: {
            bool b;
            memcpy(&b, base + f->off, sizeof(b));
            v = json_boolean(b);
            break;
        }
        case K_ENUM: {
            int e;
            memcpy(&e, base + f->off, sizeof(e));
            const char *name = f->to_name(e);
            v = f->from_name(name) == e ? json_string(name) : NULL;
            break;
        }
        }
        if (v == NULL || json_object_set_new(o, f->name, v) != 0) {
            goto fail;
        }
    }
    return o;
fail:
    json_decref(o);
    return NULL;
}

char *pp_eventfile_format(const struct pp_event *ev)
{
    const struct table *t = table_for(ev->type);
    if (t == NULL) {
        return NULL;
    }
    json_t *o = build(ev, t);
    if (o == NULL) {
        return NULL;
    }
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER |
                                JSON_REAL_PRECISION(real_precision(t, ev)));
    json_decref(o);
    return s;
}

int pp_eventfile_write(FILE *fp, const struct pp_event *ev, char *errstr, size_t errstr_size)
{
    char *s = pp_eventfile_format(ev);
    if (s == NULL) {
        snprintf(errstr, errstr_size,
                 "event %.64s cannot be written as JSON (unknown type or enum, a non-finite "
                 "number or a string that is not UTF-8)",
                 ev->event_id);
        return -1;
    }
    int rc = 0;
    if (fputs(s, fp) == EOF || fputc('\n', fp) == EOF) {
        snprintf(errstr, errstr_size, "write failed: %s", strerror(errno));
        rc = -1;
    }
    free(s);
    return rc;
}
