/*
 * test_registry.c — the Schema Registry client and the catalog's use of it,
 * against the project's test registry (deploy/local/registry/registry.py)
 * started by the test on a free port (label `component`: it talks HTTP to a
 * local process).
 *
 * Covers: registering a schema (same schema, same id), fetching a writer
 * schema by id and decoding a record written with it (once per id: the
 * registry sees one request however many records follow), unknown ids
 * (40403 → unknown_schema_id, remembered), a registry answering 5xx (the
 * decode says schema_unavailable, backs off without asking again, then
 * succeeds once the registry is back), a registry that is not listening at
 * all, a schema that is not Avro, basic authentication, and https with a
 * private CA (registry.ca_location; the certificate is made with openssl).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "codec.h"
#include "registry.h"
#include "vectors/resolve_vectors.h"

extern char **environ;

#define N(a) (sizeof(a) / sizeof((a)[0]))

struct server {
    pid_t pid;
    char url[64];
};

/* Extra arguments of registry.py (NULL-terminated), e.g. basic auth or TLS. */
#define MAX_EXTRA 8

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Starts registry.py on port 0 and waits (deadline 20 s) for the port it
 * reports in its port file. */
static int server_start(struct server *s, const char *const *extra)
{
    char port_file[128];
    snprintf(port_file, sizeof(port_file), "/tmp/pp-test-registry-%d-%lld.port", (int)getpid(),
             (long long)mono_ms());
    unlink(port_file);
    char *argv[8 + MAX_EXTRA];
    int n = 0;
    argv[n++] = "python3";
    argv[n++] = PP_REGISTRY_PY;
    argv[n++] = "--port";
    argv[n++] = "0";
    argv[n++] = "--port-file";
    argv[n++] = port_file;
    for (int i = 0; extra && extra[i] && i < MAX_EXTRA; i++) {
        argv[n++] = (char *)extra[i];
    }
    argv[n] = NULL;
    if (posix_spawnp(&s->pid, "python3", NULL, NULL, argv, environ) != 0) {
        return -1;
    }
    int64_t deadline = mono_ms() + 20000;
    while (mono_ms() < deadline) {
        FILE *fp = fopen(port_file, "r");
        int port = 0;
        if (fp) {
            if (fscanf(fp, "%d", &port) != 1) {
                port = 0;
            }
            fclose(fp);
        }
        if (port > 0) {
            unlink(port_file);
            bool tls = false;
            for (int i = 0; extra && extra[i]; i++) {
                tls = tls || strcmp(extra[i], "--tls-cert") == 0;
            }
            snprintf(s->url, sizeof(s->url), "%s://127.0.0.1:%d", tls ? "https" : "http", port);
            return 0;
        }
        nap_ms(20);
    }
    return -1;
}

static void server_stop(struct server *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
    }
}

struct fixture {
    struct server srv;
    struct pp_registry *reg;
    struct pp_schema_catalog *cat;
    struct pp_codec *codec;
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    char err[256];
    if (server_start(&fx->srv, NULL) != 0) {
        fprintf(stderr, "cannot start %s\n", PP_REGISTRY_PY);
        return -1;
    }
    struct pp_registry_conf rc = {.url = fx->srv.url, .timeout_ms = 2000};
    fx->reg = pp_registry_new(&rc, err, sizeof(err));
    fx->cat = pp_schema_catalog_new(err, sizeof(err));
    if (fx->reg == NULL || fx->cat == NULL) {
        fprintf(stderr, "setup: %s\n", err);
        return -1;
    }
    pp_schema_catalog_set_registry(fx->cat, fx->reg);
    fx->codec = pp_codec_new(fx->cat, NULL);
    *state = fx;
    return fx->codec ? 0 : -1;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    pp_codec_destroy(fx->codec);
    pp_schema_catalog_destroy(fx->cat);
    pp_registry_destroy(fx->reg);
    server_stop(&fx->srv);
    free(fx);
    return 0;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    char *buf = userdata;
    size_t have = strlen(buf), n = size * nmemb;
    if (have + n < 4096) {
        memcpy(buf + have, ptr, n);
        buf[have + n] = '\0';
    }
    return n;
}

/* A request to the test registry's control endpoints; the body in out. */
static void control(const struct fixture *fx, const char *path, const char *post, char *out)
{
    char url[256];
    snprintf(url, sizeof(url), "%s%s", fx->srv.url, path);
    out[0] = '\0';
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    if (post) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, post);
    }
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_cleanup(c);
}

/* How many times the registry served "GET /schemas/ids/<id>". */
static int id_requests(const struct fixture *fx, int32_t id)
{
    char body[4096], key[64];
    control(fx, "/_control/stats", NULL, body);
    snprintf(key, sizeof(key), "\"GET /schemas/ids/%d\": ", (int)id);
    const char *p = strstr(body, key);
    return p ? (int)strtol(p + strlen(key), NULL, 10) : 0;
}

static const struct resolve_vector *vec(const char *name)
{
    for (size_t i = 0; i < N(resolve_vectors); i++) {
        if (strcmp(resolve_vectors[i].name, name) == 0) {
            return &resolve_vectors[i];
        }
    }
    fail_msg("no vector %s", name);
    return NULL;
}

static size_t frame(int32_t id, const struct resolve_vector *v, unsigned char *out)
{
    out[0] = 0;
    out[1] = (unsigned char)((uint32_t)id >> 24);
    out[2] = (unsigned char)((uint32_t)id >> 16);
    out[3] = (unsigned char)((uint32_t)id >> 8);
    out[4] = (unsigned char)id;
    memcpy(out + 5, v->body, v->len);
    return v->len + 5;
}

static int32_t register_vector(struct fixture *fx, const char *subject, const char *name)
{
    int32_t id = -1;
    char err[256] = "";
    enum pp_registry_err rerr =
        pp_registry_register(fx->reg, subject, vec(name)->schema, &id, err, sizeof(err));
    if (rerr != PP_REGISTRY_OK) {
        fail_msg("register %s: %s", name, err);
    }
    return id;
}

static void test_register_is_idempotent(void **state)
{
    struct fixture *fx = *state;
    char err[256] = "";
    int32_t a = -1, b = -1;
    const char *alert = pp_schema_json(PP_SCHEMA_ALERT);
    assert_int_equal(pp_registry_register(fx->reg, "alerts-value", alert, &a, err, sizeof(err)),
                     PP_REGISTRY_OK);
    assert_int_equal(pp_registry_register(fx->reg, "alerts-value", alert, &b, err, sizeof(err)),
                     PP_REGISTRY_OK);
    assert_true(a > 0);
    assert_int_equal(a, b);
    char *json = NULL;
    assert_int_equal(pp_registry_schema_by_id(fx->reg, a, &json, err, sizeof(err)), PP_REGISTRY_OK);
    assert_string_equal(json, alert);
    free(json);
    /* An alert on an input topic is known, but not an event. */
    struct pp_schema_entry *e = NULL;
    assert_int_equal(pp_schema_catalog_lookup(fx->cat, a, &e, err, sizeof(err)), PP_SCHEMA_FOUND);
    assert_int_equal(e->kind, PP_SCHEMA_ALERT);
}

static void test_decode_fetches_each_id_once(void **state)
{
    struct fixture *fx = *state;
    int32_t id = register_vector(fx, "deals-value", "deal_v2");
    unsigned char wire[2048];
    size_t len = frame(id, vec("deal_v2"), wire);
    for (int i = 0; i < 50; i++) {
        struct pp_event ev;
        char detail[256] = "";
        enum pp_decode_err err =
            pp_codec_decode_event(fx->codec, wire, len, &ev, detail, sizeof(detail));
        if (err != PP_DECODE_OK) {
            fail_msg("decode %d: %s (%s)", i, pp_decode_reason(err), detail);
        }
        assert_string_equal(ev.u.deal.deal_id, "D-2");
    }
    assert_int_equal(id_requests(fx, id), 1);
}

static void test_unknown_id_is_dead_letter_and_remembered(void **state)
{
    struct fixture *fx = *state;
    unsigned char wire[2048];
    size_t len = frame(4242, vec("deal_v2"), wire);
    struct pp_event ev;
    char detail[256] = "";
    for (int i = 0; i < 5; i++) {
        assert_int_equal(pp_codec_decode_event(fx->codec, wire, len, &ev, detail, sizeof(detail)),
                         PP_DECODE_UNKNOWN_SCHEMA);
    }
    assert_non_null(strstr(detail, "4242"));
    assert_int_equal(id_requests(fx, 4242), 1);
}

static void test_non_avro_schema_is_mismatch(void **state)
{
    struct fixture *fx = *state;
    char body[4096];
    control(fx, "/subjects/proto-value/versions",
            "{\"schema\": \"syntax = \\\"proto3\\\";\", \"schemaType\": \"PROTOBUF\"}", body);
    const char *p = strstr(body, "\"id\": ");
    assert_non_null(p);
    int32_t id = (int32_t)strtol(p + 6, NULL, 10);
    unsigned char wire[2048];
    size_t len = frame(id, vec("deal_v2"), wire);
    struct pp_event ev;
    char detail[256] = "";
    for (int i = 0; i < 3; i++) {
        assert_int_equal(pp_codec_decode_event(fx->codec, wire, len, &ev, detail, sizeof(detail)),
                         PP_DECODE_SCHEMA_MISMATCH);
    }
    assert_int_equal(id_requests(fx, id), 1);
}

static void test_5xx_is_unavailable_then_recovers(void **state)
{
    struct fixture *fx = *state;
    int32_t id = register_vector(fx, "support-value", "support_v0");
    unsigned char wire[2048];
    size_t len = frame(id, vec("support_v0"), wire);
    char body[4096];
    control(fx, "/_control/fail", "{\"count\": 2}", body);

    struct pp_event ev;
    char detail[256] = "";
    assert_int_equal(pp_codec_decode_event(fx->codec, wire, len, &ev, detail, sizeof(detail)),
                     PP_DECODE_SCHEMA_UNAVAILABLE);
    assert_non_null(strstr(detail, "500"));
    /* Within the backoff the registry is not asked again. */
    assert_int_equal(pp_codec_decode_event(fx->codec, wire, len, &ev, detail, sizeof(detail)),
                     PP_DECODE_SCHEMA_UNAVAILABLE);
    assert_int_equal(id_requests(fx, id), 1);

    /* Then it is, and the second failure doubles the backoff; the third
     * request succeeds. Deadline, not a fixed sleep. */
    int64_t deadline = mono_ms() + 10000;
    enum pp_decode_err err;
    while ((err = pp_codec_decode_event(fx->codec, wire, len, &ev, detail, sizeof(detail))) ==
               PP_DECODE_SCHEMA_UNAVAILABLE &&
           mono_ms() < deadline) {
        nap_ms(25);
    }
    assert_int_equal(err, PP_DECODE_OK);
    assert_string_equal(ev.u.support.ticket_id, "T-1");
    assert_int_equal(id_requests(fx, id), 3);
}

static void test_registry_not_listening(void **state)
{
    (void)state;
    /* A port nobody listens on: bind one, note it, close it. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    close(fd);
    char url[64], err[256] = "";
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", ntohs(sa.sin_port));
    struct pp_registry_conf rc = {.url = url, .timeout_ms = 500};
    struct pp_registry *reg = pp_registry_new(&rc, err, sizeof(err));
    struct pp_schema_catalog *cat = pp_schema_catalog_new(err, sizeof(err));
    pp_schema_catalog_set_registry(cat, reg);
    struct pp_codec *codec = pp_codec_new(cat, NULL);
    unsigned char wire[2048];
    size_t len = frame(1, vec("deal_v2"), wire);
    struct pp_event ev;
    char detail[256] = "";
    int64_t t0 = mono_ms();
    assert_int_equal(pp_codec_decode_event(codec, wire, len, &ev, detail, sizeof(detail)),
                     PP_DECODE_SCHEMA_UNAVAILABLE);
    assert_true(mono_ms() - t0 < 2000);
    assert_non_null(strstr(detail, url));
    /* A local id means nothing with a registry. */
    assert_null(pp_schema_catalog_get(cat, PP_SCHEMA_ID_DEAL));
    pp_codec_destroy(codec);
    pp_schema_catalog_destroy(cat);
    pp_registry_destroy(reg);

    struct pp_registry_conf bad = {.url = "ftp://x"};
    assert_null(pp_registry_new(&bad, err, sizeof(err)));
}

static void test_basic_auth(void **state)
{
    (void)state;
    struct server s = {0};
    static const char *const auth[] = {"--user", "pp", "--password", "s3cret", NULL};
    assert_int_equal(server_start(&s, auth), 0);
    char err[256] = "";
    int32_t id = -1;
    struct pp_registry_conf wrong = {.url = s.url, .user = "pp", .password = "nope"};
    struct pp_registry *reg = pp_registry_new(&wrong, err, sizeof(err));
    assert_int_equal(pp_registry_register(reg, "x-value", pp_schema_json(PP_SCHEMA_ALERT), &id, err,
                                          sizeof(err)),
                     PP_REGISTRY_UNAVAILABLE);
    assert_non_null(strstr(err, "401"));
    pp_registry_destroy(reg);
    struct pp_registry_conf right = {.url = s.url, .user = "pp", .password = "s3cret"};
    reg = pp_registry_new(&right, err, sizeof(err));
    assert_int_equal(pp_registry_register(reg, "x-value", pp_schema_json(PP_SCHEMA_ALERT), &id, err,
                                          sizeof(err)),
                     PP_REGISTRY_OK);
    assert_true(id > 0);
    pp_registry_destroy(reg);
    server_stop(&s);
}

/* Runs a program to completion; its exit status. */
static int run(char *const argv[])
{
    pid_t pid;
    int status = -1;
    if (posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ) != 0 ||
        waitpid(pid, &status, 0) < 0) {
        return -1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_https_with_ca_location(void **state)
{
    (void)state;
    char dir[] = "/tmp/pp-test-registry-tls-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char cert[96], key[96];
    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    /* A self-signed certificate for 127.0.0.1: it is its own CA. */
    char *req[] = {"openssl",
                   "req",
                   "-x509",
                   "-newkey",
                   "ec",
                   "-pkeyopt",
                   "ec_paramgen_curve:prime256v1",
                   "-nodes",
                   "-days",
                   "1",
                   "-subj",
                   "/CN=127.0.0.1",
                   "-addext",
                   "subjectAltName=IP:127.0.0.1",
                   "-keyout",
                   key,
                   "-out",
                   cert,
                   NULL};
    assert_int_equal(run(req), 0);
    struct server s = {0};
    const char *const tls[] = {"--tls-cert", cert, "--tls-key", key, NULL};
    assert_int_equal(server_start(&s, tls), 0);
    assert_non_null(strstr(s.url, "https://"));

    char err[256] = "";
    int32_t id = -1;
    /* Not signed by a CA the system knows: refused, and "retry later" (a
     * misconfiguration must not dead-letter records). */
    struct pp_registry_conf sys = {.url = s.url};
    struct pp_registry *reg = pp_registry_new(&sys, err, sizeof(err));
    assert_int_equal(pp_registry_register(reg, "tls-value", pp_schema_json(PP_SCHEMA_ALERT), &id,
                                          err, sizeof(err)),
                     PP_REGISTRY_UNAVAILABLE);
    pp_registry_destroy(reg);
    /* With the certificate as the CA bundle. */
    struct pp_registry_conf ca = {.url = s.url, .ca_location = cert};
    reg = pp_registry_new(&ca, err, sizeof(err));
    enum pp_registry_err rerr = pp_registry_register(
        reg, "tls-value", pp_schema_json(PP_SCHEMA_ALERT), &id, err, sizeof(err));
    if (rerr != PP_REGISTRY_OK) {
        fail_msg("https with ca_location: %s", err);
    }
    assert_true(id > 0);
    pp_registry_destroy(reg);
    server_stop(&s);
    unlink(cert);
    unlink(key);
    rmdir(dir);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_register_is_idempotent),
        cmocka_unit_test(test_decode_fetches_each_id_once),
        cmocka_unit_test(test_unknown_id_is_dead_letter_and_remembered),
        cmocka_unit_test(test_non_avro_schema_is_mismatch),
        cmocka_unit_test(test_5xx_is_unavailable_then_recovers),
        cmocka_unit_test(test_registry_not_listening),
        cmocka_unit_test(test_basic_auth),
        cmocka_unit_test(test_https_with_ca_location),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    curl_global_cleanup();
    return rc;
}
