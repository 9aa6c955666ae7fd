/*
 * codec.h — the Confluent wire format and the Avro ⇄ domain mapping.
 *
 * Wire format: byte 0 = 0 (magic), bytes 1–4 = schema id (big-endian), then
 * the Avro binary body. Decoding turns a record value into a validated
 * struct pp_event, or into a reason that the caller writes to the dead-letter
 * topic (pp_decode_reason()). Encoding writes events (generators, tests) and
 * alerts (the producer).
 *
 * A codec owns reusable buffers and is not thread-safe: one per thread.
 */
#ifndef PP_SCHEMA_CODEC_H
#define PP_SCHEMA_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "alert.h"
#include "catalog.h"
#include "event.h"

#define PP_WIRE_HEADER 5

enum pp_decode_err {
    PP_DECODE_OK = 0,
    PP_DECODE_TOO_SHORT,       /* fewer than 5 bytes, or no value at all */
    PP_DECODE_BAD_MAGIC,       /* byte 0 is not 0 */
    PP_DECODE_TOO_LARGE,       /* over the configured message size limit */
    PP_DECODE_UNKNOWN_SCHEMA,  /* the id is not in the catalog */
    PP_DECODE_NOT_AN_EVENT,    /* a known schema that is not an event (e.g. an alert) */
    PP_DECODE_MALFORMED,       /* the Avro body does not decode, or has trailing bytes */
    PP_DECODE_INVALID,         /* decodes, but a value is outside its domain */
    PP_DECODE_SCHEMA_MISMATCH, /* the writer schema does not resolve to the reader (Avro rules) */
    /* Not a dead letter: the schema registry cannot be asked now. The
     * consumer holds the partition and retries; nothing is dropped. */
    PP_DECODE_SCHEMA_UNAVAILABLE,
    PP_DECODE__COUNT
};

/* Stable snake_case names, used as DLQ header values and metric labels. */
const char *pp_decode_reason(enum pp_decode_err err);

/* Bounds of one decode. Decoding allocates nothing (values go straight into
 * struct pp_event), so the memory a record can cost is zero; these bound the
 * work a hostile record can cause and reject values nobody sends. */
struct pp_codec_limits {
    size_t max_message_bytes; /* default 1 MiB */
    int64_t min_event_ms;     /* event times outside [min, max] are invalid */
    int64_t max_event_ms;
    size_t max_string_bytes; /* any string or bytes value, read or skipped; default 64 KiB */
    size_t max_items;        /* array and map items per record; default 100000 */
};
void pp_codec_limits_defaults(struct pp_codec_limits *lim);

struct pp_codec;

/* The catalog is borrowed and must outlive the codec. */
struct pp_codec *pp_codec_new(struct pp_schema_catalog *cat, const struct pp_codec_limits *lim);
void pp_codec_destroy(struct pp_codec *codec);

/* Decodes one record value: its writer schema (by id, from the catalog or
 * its registry) is resolved into the reader schema of its kind following the
 * Avro specification (reader defaults for fields the writer lacks, writer
 * fields the reader lacks skipped, enums by symbol name with the reader's
 * enum default for unknown symbols, int→long→float→double and string↔bytes
 * promotion, unions on either side). The resolution is compiled once per
 * writer schema id and cached in the catalog entry.
 *
 * On error `ev` is unspecified and `detail` (may be NULL) says what was
 * wrong, for the DLQ header and the log. `schema_id` (may be NULL) receives
 * the record's schema id, or -1 when it has no wire header. */
enum pp_decode_err pp_codec_decode(struct pp_codec *codec, const void *buf, size_t len,
                                   struct pp_event *ev, int32_t *schema_id, char *detail,
                                   size_t detail_size);
/* pp_codec_decode without the schema id. */
enum pp_decode_err pp_codec_decode_event(struct pp_codec *codec, const void *buf, size_t len,
                                         struct pp_event *ev, char *detail, size_t detail_size);

/* Encodes in the wire format with the catalog's id for the kind. Returns a
 * pointer to the codec's buffer (valid until the next encode on this codec)
 * and its length in *len, or NULL on error (detail in errstr). */
const void *pp_codec_encode_event(struct pp_codec *codec, const struct pp_event *ev, size_t *len,
                                  char *errstr, size_t errstr_size);
const void *pp_codec_encode_alert(struct pp_codec *codec, const struct pp_alert *alert,
                                  const char *details_json, size_t *len, char *errstr,
                                  size_t errstr_size);

/* Reads the schema id of a wire-format value; false when it has no header. */
bool pp_wire_schema_id(const void *buf, size_t len, int32_t *id);

#endif
