/*
 * embedded.h — the .avsc files of schemas/, compiled into the binary.
 */
#ifndef PP_SCHEMA_EMBEDDED_H
#define PP_SCHEMA_EMBEDDED_H

struct pp_schema_embedded {
    const char *name; /* file name without .avsc */
    const char *json;
};

/* Terminated by an entry whose name is NULL. */
extern const struct pp_schema_embedded pp_schema_embedded[];

#endif
