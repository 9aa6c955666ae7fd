/*
 * registry.c — Schema Registry client on libcurl (blocking, bounded). See
 * registry.h.
 *
 * One curl easy handle is kept and reused, so the connection to the registry
 * is kept alive between the rare requests. Response bodies are capped
 * (MAX_BODY): a registry is trusted more than a Kafka record, but not with
 * our memory.
 */
#include "registry.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "palloc.h"

#define MAX_BODY     (4 * 1024 * 1024)
#define CONTENT_TYPE "application/vnd.schemaregistry.v1+json"

struct pp_registry {
    CURL *curl;
    char *url;
    char *user;
    char *password;
    char *ca_location;
    long timeout_ms;
    struct curl_slist *headers;
};

struct body {
    char *data;
    size_t len;
    bool overflow;
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct body *b = userdata;
    size_t n = size * nmemb;
    if (b->len + n > MAX_BODY) {
        b->overflow = true;
        return 0; /* makes curl fail the transfer */
    }
    b->data = pp_xrealloc(b->data, b->len + n + 1);
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

static char *dup_or_null(const char *s)
{
    return s && s[0] ? pp_xstrdup(s) : NULL;
}

struct pp_registry *pp_registry_new(const struct pp_registry_conf *conf, char *errstr,
                                    size_t errstr_size)
{
    if (conf->url == NULL ||
        (strncmp(conf->url, "http://", 7) != 0 && strncmp(conf->url, "https://", 8) != 0)) {
        snprintf(errstr, errstr_size, "schema registry url '%s': expected http:// or https://",
                 conf->url ? conf->url : "");
        return NULL;
    }
    static bool global_done;
    if (!global_done) {
        /* Once per process; the service starts one registry client. */
        curl_global_init(CURL_GLOBAL_DEFAULT);
        global_done = true;
    }
    struct pp_registry *reg = pp_xcalloc(1, sizeof(*reg));
    reg->url = pp_xstrdup(conf->url);
    size_t n = strlen(reg->url);
    while (n > 0 && reg->url[n - 1] == '/') {
        reg->url[--n] = '\0';
    }
    reg->user = dup_or_null(conf->user);
    reg->password = dup_or_null(conf->password);
    reg->ca_location = dup_or_null(conf->ca_location);
    reg->timeout_ms = conf->timeout_ms > 0 ? (long)conf->timeout_ms : 2000;
    reg->curl = curl_easy_init();
    if (reg->curl == NULL) {
        snprintf(errstr, errstr_size, "schema registry: cannot initialise libcurl");
        pp_registry_destroy(reg);
        return NULL;
    }
    reg->headers = curl_slist_append(NULL, "Accept: " CONTENT_TYPE ", application/json");
    reg->headers = curl_slist_append(reg->headers, "Content-Type: " CONTENT_TYPE);
    return reg;
}

void pp_registry_destroy(struct pp_registry *reg)
{
    if (reg == NULL) {
        return;
    }
    if (reg->curl) {
        curl_easy_cleanup(reg->curl);
    }
    curl_slist_free_all(reg->headers);
    free(reg->url);
    free(reg->user);
    free(reg->password);
    free(reg->ca_location);
    free(reg);
}

const char *pp_registry_url(const struct pp_registry *reg)
{
    return reg->url;
}

/* The registry's error message ({"error_code":40403,"message":"..."}), or
 * the start of the body when it is not that. */
static void error_text(const struct body *b, long status, char *errstr, size_t errstr_size)
{
    json_t *root = b->data ? json_loads(b->data, 0, NULL) : NULL;
    json_t *code = json_object_get(root, "error_code");
    json_t *msg = json_object_get(root, "message");
    if (json_is_integer(code) && json_is_string(msg)) {
        snprintf(errstr, errstr_size, "HTTP %ld, error %lld: %s", status,
                 (long long)json_integer_value(code), json_string_value(msg));
    }
    else {
        snprintf(errstr, errstr_size, "HTTP %ld: %.120s", status, b->data ? b->data : "");
    }
    json_decref(root);
}

/* Performs one request; on PP_REGISTRY_OK the parsed JSON body is in *root. */
static enum pp_registry_err request(struct pp_registry *reg, const char *path,
                                    const char *post_body, json_t **root, char *errstr,
                                    size_t errstr_size)
{
    char url[2048];
    if ((size_t)snprintf(url, sizeof(url), "%s%s", reg->url, path) >= sizeof(url)) {
        snprintf(errstr, errstr_size, "request URL too long");
        return PP_REGISTRY_INVALID;
    }
    struct body b = {0};
    char curl_err[CURL_ERROR_SIZE] = "";
    CURL *c = reg->curl;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, reg->headers);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, reg->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, reg->timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_err);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_USERAGENT, "partnerpulse");
    if (reg->user) {
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
        curl_easy_setopt(c, CURLOPT_USERNAME, reg->user);
        curl_easy_setopt(c, CURLOPT_PASSWORD, reg->password ? reg->password : "");
    }
    if (reg->ca_location) {
        curl_easy_setopt(c, CURLOPT_CAINFO, reg->ca_location);
    }
    if (post_body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, post_body);
    }
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    enum pp_registry_err err = PP_REGISTRY_OK;
    if (rc != CURLE_OK) {
        snprintf(errstr, errstr_size, "%s %s: %s", post_body ? "POST" : "GET", url,
                 b.overflow    ? "response larger than 4 MiB"
                 : curl_err[0] ? curl_err
                               : curl_easy_strerror(rc));
        err = b.overflow ? PP_REGISTRY_INVALID : PP_REGISTRY_UNAVAILABLE;
    }
    else if (status == 404) {
        error_text(&b, status, errstr, errstr_size);
        err = PP_REGISTRY_NOT_FOUND;
    }
    else if (status >= 500 || status == 401 || status == 403 || status == 408 || status == 429) {
        error_text(&b, status, errstr, errstr_size);
        err = PP_REGISTRY_UNAVAILABLE;
    }
    else if (status < 200 || status >= 300) {
        error_text(&b, status, errstr, errstr_size);
        err = PP_REGISTRY_INVALID;
    }
    else {
        json_error_t jerr;
        *root = b.data ? json_loads(b.data, 0, &jerr) : NULL;
        if (*root == NULL || !json_is_object(*root)) {
            snprintf(errstr, errstr_size, "%s: the response is not a JSON object", url);
            json_decref(*root);
            *root = NULL;
            err = PP_REGISTRY_INVALID;
        }
    }
    free(b.data);
    return err;
}

enum pp_registry_err pp_registry_schema_by_id(struct pp_registry *reg, int32_t id, char **json,
                                              char *errstr, size_t errstr_size)
{
    char path[64];
    snprintf(path, sizeof(path), "/schemas/ids/%d", (int)id);
    json_t *root = NULL;
    *json = NULL;
    enum pp_registry_err err = request(reg, path, NULL, &root, errstr, errstr_size);
    if (err != PP_REGISTRY_OK) {
        return err;
    }
    json_t *schema = json_object_get(root, "schema");
    json_t *type = json_object_get(root, "schemaType");
    if (!json_is_string(schema)) {
        snprintf(errstr, errstr_size, "%s: no \"schema\" string in the response", path);
        err = PP_REGISTRY_INVALID;
    }
    else if (type && !(json_is_string(type) && strcmp(json_string_value(type), "AVRO") == 0)) {
        snprintf(errstr, errstr_size, "%s: schemaType %s is not AVRO", path,
                 json_is_string(type) ? json_string_value(type) : "?");
        err = PP_REGISTRY_INVALID;
    }
    else {
        *json = pp_xstrdup(json_string_value(schema));
    }
    json_decref(root);
    return err;
}

enum pp_registry_err pp_registry_register(struct pp_registry *reg, const char *subject,
                                          const char *schema_json, int32_t *id, char *errstr,
                                          size_t errstr_size)
{
    char *esc = curl_easy_escape(reg->curl, subject, 0);
    if (esc == NULL) {
        snprintf(errstr, errstr_size, "cannot escape subject '%s'", subject);
        return PP_REGISTRY_INVALID;
    }
    char path[1024];
    int n = snprintf(path, sizeof(path), "/subjects/%s/versions", esc);
    curl_free(esc);
    if (n < 0 || (size_t)n >= sizeof(path)) {
        snprintf(errstr, errstr_size, "subject '%s' too long", subject);
        return PP_REGISTRY_INVALID;
    }
    json_t *req = json_pack("{s:s}", "schema", schema_json);
    char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (body == NULL) {
        snprintf(errstr, errstr_size, "cannot build the registration request");
        return PP_REGISTRY_INVALID;
    }
    json_t *root = NULL;
    enum pp_registry_err err = request(reg, path, body, &root, errstr, errstr_size);
    free(body);
    if (err != PP_REGISTRY_OK) {
        return err;
    }
    json_t *jid = json_object_get(root, "id");
    if (!json_is_integer(jid) || json_integer_value(jid) < 0 ||
        json_integer_value(jid) > INT32_MAX) {
        snprintf(errstr, errstr_size, "%s: no valid \"id\" in the response", path);
        err = PP_REGISTRY_INVALID;
    }
    else {
        *id = (int32_t)json_integer_value(jid);
    }
    json_decref(root);
    return err;
}
