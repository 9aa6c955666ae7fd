/*
 * eventfile.h — event files: JSON Lines, one event per line.
 *
 *   {"type":"deal", "event_id":"…", "occurred_at":"2025-06-19T06:00:00Z", …}
 *
 * `type` is "deal", "license_consumption" or "support"; every other member is
 * named exactly as the field of the matching schemas/<type>.avsc. Timestamps are
 * ISO-8601 UTC strings ("…Z" or "…+HH:MM", optional fraction) or epoch
 * milliseconds; dates are "YYYY-MM-DD" (or days since 1970-01-01); enums are
 * their symbols; optional fields are omitted or null; fields with an Avro
 * default may be omitted. Unknown members are errors (a typo must not silently
 * become a default).
 *
 * The reader applies the same domain rules as the Avro decoder (it encodes the
 * parsed event and decodes it through pp_codec, so the two cannot drift) and
 * reports each bad line as "FILE:LINE: what". It never crashes on junk; lines
 * are capped at PP_EVENTFILE_MAX_LINE bytes. The writer is its exact inverse:
 * write then read gives the same struct pp_event, field for field. Docs:
 * docs/event-files.md.
 */
#ifndef PP_SCHEMA_EVENTFILE_H
#define PP_SCHEMA_EVENTFILE_H

#include <stddef.h>
#include <stdio.h>

#include "event.h"

#define PP_EVENTFILE_MAX_LINE (64 * 1024)

enum pp_eventfile_rc {
    PP_EVENTFILE_OK = 0,
    PP_EVENTFILE_EOF,      /* no more lines */
    PP_EVENTFILE_BAD_LINE, /* this line is skipped; reading may continue */
    PP_EVENTFILE_IO,       /* the file cannot be read further */
};

struct pp_eventfile_reader;

/* Opens `path` ("-" is stdin). NULL with errstr on failure. */
struct pp_eventfile_reader *pp_eventfile_open(const char *path, char *errstr, size_t errstr_size);

/* Reads from an open stream; `name` is used in messages. The stream stays the
 * caller's (not closed by destroy). NULL with errstr on failure. */
struct pp_eventfile_reader *pp_eventfile_reader_new(FILE *fp, const char *name, char *errstr,
                                                    size_t errstr_size);
void pp_eventfile_reader_destroy(struct pp_eventfile_reader *rd);

/* Next event. Blank lines are skipped. On PP_EVENTFILE_BAD_LINE errstr is
 * "FILE:LINE: what"; the caller may call again for the next line. */
enum pp_eventfile_rc pp_eventfile_next(struct pp_eventfile_reader *rd, struct pp_event *ev,
                                       char *errstr, size_t errstr_size);

/* Line number of the last line returned (1-based). */
unsigned long pp_eventfile_line(const struct pp_eventfile_reader *rd);

/* Parses one line (without its newline). `what` gets the reason on error
 * (without the FILE:LINE prefix). Returns 0 or -1. */
int pp_eventfile_parse(struct pp_eventfile_reader *rd, const char *line, size_t len,
                       struct pp_event *ev, char *what, size_t what_size);

/* Writes `ev` as one line (with its newline). Returns 0, or -1 with errstr
 * (an I/O error, or an event the writer cannot represent). */
int pp_eventfile_write(FILE *fp, const struct pp_event *ev, char *errstr, size_t errstr_size);

/* The same line as a malloc'd NUL-terminated string without newline (free()). */
char *pp_eventfile_format(const struct pp_event *ev);

#endif
