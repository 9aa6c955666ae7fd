/*
 * registry.h — a client of a Confluent-compatible Schema Registry.
 *
 * Two calls of the documented REST API are used: `GET /schemas/ids/{id}`
 * (the writer schema of an input record) and `POST /subjects/{s}/versions`
 * (registering the alert schema so alerts carry a registered id, which any
 * Confluent-compatible consumer can read). Requests are blocking libcurl
 * calls bounded by the configured timeout: the catalog caches every answer,
 * so the loop pays for a request once per schema id per process.
 *
 * Errors are sorted the way the pipeline must act on them: the registry
 * saying it does not know an id (HTTP 404, error code 40403) is final — the
 * record is dead-lettered; anything else (connection refused, timeout, 5xx,
 * a 401 from a wrong password) means "ask again later", and the partition is
 * held, never skipped.
 */
#ifndef PP_SCHEMA_REGISTRY_H
#define PP_SCHEMA_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

struct pp_registry_conf {
    const char *url;         /* e.g. http://127.0.0.1:8081 (no trailing path) */
    const char *user;        /* basic auth; NULL or "" for none */
    const char *password;    /* basic auth */
    const char *ca_location; /* CA bundle for https; NULL or "" for the system's */
    int64_t timeout_ms;      /* whole request, connect included; 0 = 2000 */
};

enum pp_registry_err {
    PP_REGISTRY_OK = 0,
    PP_REGISTRY_NOT_FOUND,   /* 404: the subject, version or schema id does not exist */
    PP_REGISTRY_UNAVAILABLE, /* transport error, timeout, 5xx, 401/403: try again later */
    PP_REGISTRY_INVALID,     /* the registry refused the request (4xx other than 404), or
                                answered with something that is not the documented JSON */
};

struct pp_registry;

/* Copies what it needs from conf. NULL with errstr on a bad URL or when
 * libcurl cannot be initialised. */
struct pp_registry *pp_registry_new(const struct pp_registry_conf *conf, char *errstr,
                                    size_t errstr_size);
void pp_registry_destroy(struct pp_registry *reg);

/* The schema text of `id` in *json (malloc'ed, the caller frees). Schemas of
 * another type than AVRO (schemaType PROTOBUF or JSON) are PP_REGISTRY_INVALID. */
enum pp_registry_err pp_registry_schema_by_id(struct pp_registry *reg, int32_t id, char **json,
                                              char *errstr, size_t errstr_size);

/* Registers `schema_json` under `subject` (idempotent in the registry: the
 * same schema gets the same id) and returns its id. */
enum pp_registry_err pp_registry_register(struct pp_registry *reg, const char *subject,
                                          const char *schema_json, int32_t *id, char *errstr,
                                          size_t errstr_size);

/* The URL the client talks to (for logs). */
const char *pp_registry_url(const struct pp_registry *reg);

#endif
