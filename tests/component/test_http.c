/*
 * test_http.c — the HTTP server (app/http.c) and the metrics registry
 * (app/metrics.c) in-process, under ASan/UBSan in CI: the server runs on an
 * event_base in this thread with a fake partner provider and no pipeline; a
 * client thread speaks plain HTTP/1.1 over a socket. The integration tests
 * (tests/integration/test_http.py) cover the same endpoints against a real
 * broker; this one covers what is awkward there: slow event-stream clients
 * dropped at the buffer bound, the recent-alert ring wrapping, the metrics
 * text format in detail.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "http.h"
#include "metrics.h"
#include "model.h"
#include "ptime.h"

/* ------------------------------------------------------------ metrics */

static void test_metrics_text_format(void **state)
{
    (void)state;
    struct pp_metrics *m = pp_metrics_new();
    static const char *const ln[] = {"topic", "partition"};
    struct pp_metric_family *g =
        pp_metrics_family(m, PP_METRIC_GAUGE, "x_lag", "Lag \\ per\npartition.", ln, 2, NULL, 0);
    const char *v1[] = {"a\"b\\c\nd", "0"};
    pp_metric_set(pp_metrics_series(g, v1), 42);
    struct pp_metric_family *c =
        pp_metrics_family(m, PP_METRIC_COUNTER, "x_total", "Things.", NULL, 0, NULL, 0);
    struct pp_metric *cs = pp_metrics_series(c, NULL);
    pp_metric_add(cs, 2);
    pp_metric_add(cs, 0.5);
    static const double b[] = {0.1, 1, 10};
    struct pp_metric_family *hf =
        pp_metrics_family(m, PP_METRIC_HISTOGRAM, "x_seconds", "Time.", NULL, 0, b, 3);
    struct pp_metric *hs = pp_metrics_series(hf, NULL);
    pp_metric_observe(hs, 0.05);
    pp_metric_observe(hs, 0.1); /* le is inclusive */
    pp_metric_observe(hs, 5);
    pp_metric_observe(hs, 50);
    size_t len;
    char *text = pp_metrics_render(m, &len);
    assert_int_equal(strlen(text), len);
    const char *want = "# HELP x_lag Lag \\\\ per\\npartition.\n"
                       "# TYPE x_lag gauge\n"
                       "x_lag{topic=\"a\\\"b\\\\c\\nd\",partition=\"0\"} 42\n"
                       "# HELP x_total Things.\n"
                       "# TYPE x_total counter\n"
                       "x_total 2.5\n"
                       "# HELP x_seconds Time.\n"
                       "# TYPE x_seconds histogram\n"
                       "x_seconds_bucket{le=\"0.1\"} 2\n"
                       "x_seconds_bucket{le=\"1\"} 2\n"
                       "x_seconds_bucket{le=\"10\"} 3\n"
                       "x_seconds_bucket{le=\"+Inf\"} 4\n"
                       "x_seconds_sum 55.149999999999999\n"
                       "x_seconds_count 4\n";
    assert_string_equal(text, want);
    free(text);

    /* Same labels, same series; reset drops them; the cap refuses more. */
    assert_ptr_equal(pp_metrics_series(g, v1), pp_metrics_series(g, v1));
    pp_metrics_family_reset(g);
    text = pp_metrics_render(m, &len);
    assert_null(strstr(text, "x_lag{"));
    free(text);
    char buf[32];
    for (int i = 0; i < PP_METRICS_MAX_SERIES; i++) {
        snprintf(buf, sizeof(buf), "%d", i);
        const char *v[] = {"t", buf};
        assert_non_null(pp_metrics_series(g, v));
    }
    const char *over[] = {"t", "overflow"};
    assert_null(pp_metrics_series(g, over));
    pp_metric_set(NULL, 1); /* a refused series is a no-op */
    pp_metrics_destroy(m);
}

/* --------------------------------------------------------- the server */

struct fake {
    uint32_t n;
    const char *ids[3];
    double pressure[3];
    double health[3];
};

static uint32_t fake_count(const void *src)
{
    return ((const struct fake *)src)->n;
}

static int fake_view(const void *src, uint32_t idx, struct pp_http_partner *out)
{
    const struct fake *f = src;
    if (idx >= f->n) {
        return -1;
    }
    snprintf(out->partner_id, sizeof(out->partner_id), "%s", f->ids[idx]);
    out->pressure = f->pressure[idx];
    out->cpi = f->pressure[idx];
    out->health = f->health[idx];
    out->band = 2;
    out->n_signals = 1;
    snprintf(out->signals[0].name, sizeof(out->signals[0].name), "%s", "SHELF");
    out->signals[0].value = 0.5;
    out->signals[0].risk = NAN;
    return 0;
}

static int32_t fake_day(const void *src)
{
    (void)src;
    return pp_day_from_civil(2025, 7, 3);
}

struct ctx {
    struct event_base *base;
    struct pp_http *h;
    int port;
    atomic_int phase; /* client -> loop: 1 = stream open, publish; 2 = done */
    int published;
    struct event *poll;
};

static void make_alert(struct pp_alert *a, const char *partner, enum pp_alert_status st)
{
    memset(a, 0, sizeof(*a));
    snprintf(a->rule_id, sizeof(a->rule_id), "%s", "TICKET_SURGE");
    snprintf(a->partner_id, sizeof(a->partner_id), "%s", partner);
    snprintf(a->tenant, sizeof(a->tenant), "%s", "t");
    snprintf(a->dedup_key, sizeof(a->dedup_key), "cpi:v1:t:TICKET_SURGE:%s:*", partner);
    snprintf(a->alert_id, sizeof(a->alert_id), "%s:2025-07-02", a->dedup_key);
    snprintf(a->summary, sizeof(a->summary), "%s \"quoted\" summary", partner);
    a->status = st;
    a->first_seen_day = a->fired_day = a->eval_day = pp_day_from_civil(2025, 7, 2);
    a->value = 12;
    a->threshold = 10;
    a->window_days = 7;
}

static void on_poll(evutil_socket_t fd, short what, void *arg)
{
    struct ctx *c = arg;
    (void)fd;
    (void)what;
    if (atomic_load(&c->phase) == 1 && !c->published) {
        struct pp_alert a;
        make_alert(&a, "P-B", PP_ALERT_RESOLVED);
        pp_http_publish_alert(c->h, &a);
        c->published = 1;
    }
    if (atomic_load(&c->phase) == 2) {
        event_base_loopbreak(c->base);
    }
}

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

/* One request, reads the whole response (Connection: close). */
static char *fetch(int port, const char *req, int *status)
{
    int fd = connect_to(port);
    if (fd < 0) {
        return NULL;
    }
    size_t rl = strlen(req);
    if (write(fd, req, rl) != (ssize_t)rl) {
        close(fd);
        return NULL;
    }
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    ssize_t r;
    while ((r = read(fd, buf + n, cap - n - 1)) > 0) {
        n += (size_t)r;
        if (n + 1 == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
    }
    buf[n] = '\0';
    close(fd);
    *status = 0;
    sscanf(buf, "HTTP/1.%*d %d", status);
    return buf;
}

static char *get(int port, const char *path, const char *extra, int *status)
{
    char req[1024];
    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s\r\n", path,
             extra ? extra : "");
    return fetch(port, req, status);
}

struct client_result {
    int failures;
    char why[512];
};

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond) && res->failures++ == 0) {                                                     \
            snprintf(res->why, sizeof(res->why), "line %d: %s", __LINE__, #cond);                  \
        }                                                                                          \
    } while (0)

static struct client_result g_res;

static void *client(void *arg)
{
    struct ctx *c = arg;
    struct client_result *res = &g_res;
    int st;
    const char *auth = "Authorization: Bearer tok\r\n";
    char *b = get(c->port, "/healthz", NULL, &st);
    CHECK(b && st == 200 && strstr(b, "{\"status\":\"ok\"}"));
    free(b);
    b = get(c->port, "/readyz", NULL, &st);
    CHECK(b && st == 503 && strstr(b, "not_ready"));
    free(b);
    b = get(c->port, "/v1/partners", NULL, &st);
    CHECK(b && st == 401 && strstr(b, "WWW-Authenticate: Bearer"));
    free(b);
    b = get(c->port, "/v1/partners", "Authorization: Bearer tok2\r\n", &st);
    CHECK(b && st == 401);
    free(b);
    b = get(c->port, "/v1/partners", auth, &st);
    CHECK(b && st == 200);
    /* pressure desc: P-B (80), P-A (50), P-C (null last) */
    char *pa = b ? strstr(b, "\"P-A\"") : NULL, *pb = b ? strstr(b, "\"P-B\"") : NULL;
    char *pc = b ? strstr(b, "\"P-C\"") : NULL;
    CHECK(pa && pb && pc && pb < pa && pa < pc);
    CHECK(b && strstr(b, "\"evaluated_day\":\"2025-07-03\""));
    CHECK(b && strstr(b, "\"signals\":[{\"name\":\"SHELF\",\"value\":0.5,\"risk\":null}]"));
    free(b);
    b = get(c->port, "/v1/partners?sort=health&limit=1&offset=0", auth, &st);
    CHECK(b && st == 200 && strstr(b, "\"P-C\"") && !strstr(b, "\"P-A\"") &&
          strstr(b, "\"total\":3"));
    free(b);
    b = get(c->port, "/v1/partners?sort=id&offset=2", auth, &st);
    CHECK(b && st == 200 && strstr(b, "\"P-C\"") && !strstr(b, "\"P-B\""));
    free(b);
    b = get(c->port, "/v1/partners/P%2DA", auth, &st);
    CHECK(b && st == 200 && strstr(b, "\"partner_id\":\"P-A\"") &&
          strstr(b, "\"history\":[{\"day\":\"2025-07-03\",\"pressure\":50.0}]") &&
          strstr(b, "\"active_alerts\":[]"));
    free(b);
    b = get(c->port, "/v1/partners/P-B", auth, &st);
    CHECK(b && st == 200 && strstr(b, "\"history\":[{\"day\":\"2025-07-03\",\"pressure\":80.0}]"));
    CHECK(b && strstr(b, "\"active_alerts\":[{"));
    free(b);
    b = get(c->port, "/v1/partners/zzz", auth, &st);
    CHECK(b && st == 404 && strstr(b, "\"error\""));
    free(b);
    /* Not UTF-8: still a JSON 404, the byte shown as '?'. */
    b = get(c->port, "/v1/partners/%FFx", auth, &st);
    CHECK(b && st == 404 && strstr(b, "no partner '?x'"));
    free(b);
    b = get(c->port, "/v1/partners?limit=x", auth, &st);
    CHECK(b && st == 400 && strstr(b, "Content-Type: application/json"));
    free(b);
    b = get(c->port, "/v1/alerts", auth, &st);
    /* Ring of 2: the oldest of 3 published transitions is gone. */
    CHECK(b && st == 200 && strstr(b, "\"seq\":3") && strstr(b, "\"seq\":2") &&
          !strstr(b, "\"seq\":1,"));
    CHECK(b && strstr(b, "\\\"quoted\\\""));
    free(b);
    b = fetch(c->port,
              "POST /v1/alerts HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
              "Content-Length: 2\r\n\r\n{}",
              &st);
    CHECK(b && st == 405 && strstr(b, "Allow: GET, HEAD"));
    free(b);
    char big[400];
    snprintf(big, sizeof(big),
             "GET /v1/alerts HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s"
             "Content-Length: 300\r\n\r\n",
             auth);
    size_t bl = strlen(big);
    char *req = malloc(bl + 301);
    memcpy(req, big, bl);
    memset(req + bl, 'x', 300);
    req[bl + 300] = '\0';
    b = fetch(c->port, req, &st);
    free(req);
    CHECK(b && st == 413 && strstr(b, "max_body_bytes"));
    free(b);

    /* Event stream: replay after Last-Event-ID 2, then one live event. */
    int fd = connect_to(c->port);
    CHECK(fd >= 0);
    char sreq[256];
    snprintf(sreq, sizeof(sreq), "GET /v1/stream HTTP/1.1\r\nHost: x\r\n%sLast-Event-ID: 2\r\n\r\n",
             auth);
    CHECK(write(fd, sreq, strlen(sreq)) == (ssize_t)strlen(sreq));
    char sbuf[16384];
    size_t sn = 0;
    int asked = 0;
    while (sn < sizeof(sbuf) - 1) {
        ssize_t r = read(fd, sbuf + sn, sizeof(sbuf) - 1 - sn);
        if (r <= 0) {
            break;
        }
        sn += (size_t)r;
        sbuf[sn] = '\0';
        if (!asked && strstr(sbuf, "id: 3\n")) {
            atomic_store(&c->phase, 1);
            asked = 1;
        }
        if (strstr(sbuf, "id: 4\n") && strstr(strstr(sbuf, "id: 4\n"), "\n\n")) {
            break;
        }
    }
    CHECK(strstr(sbuf, "Content-Type: text/event-stream"));
    CHECK(!strstr(sbuf, "id: 2\n") && strstr(sbuf, "id: 3\nevent: alert\ndata: {"));
    CHECK(strstr(sbuf, "id: 4\nevent: alert\ndata: {\"seq\":4,"));
    CHECK(strstr(sbuf, "\"status\":\"RESOLVED\""));
    /* One stream client allowed: a second is refused while the first lives. */
    b = get(c->port, "/v1/stream", auth, &st);
    CHECK(b && st == 503 && strstr(b, "too many event-stream clients"));
    free(b);
    b = fetch(c->port,
              "HEAD /v1/stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
              "Authorization: Bearer tok\r\n\r\n",
              &st);
    CHECK(b && st == 200 && strstr(b, "text/event-stream"));
    free(b);
    close(fd);

    b = get(c->port, "/metrics", auth, &st);
    CHECK(b && st == 200 && strstr(b, "text/plain; version=0.0.4"));
    CHECK(b && strstr(b, "partnerpulse_http_requests_total{handler=\"other\",code=\"401\"} 2"));
    CHECK(b && strstr(b, "partnerpulse_http_stream_events_total 1"));
    free(b);
    atomic_store(&c->phase, 2);
    return NULL;
}

static void test_http_endpoints(void **state)
{
    (void)state;
    struct ctx c = {0};
    c.base = event_base_new();
    struct pp_http_conf conf;
    pp_http_conf_defaults(&conf);
    conf.listen = "127.0.0.1:0";
    conf.token = "tok";
    conf.max_body_bytes = 100;
    conf.alerts_recent = 2;
    conf.sse_max_clients = 1;
    conf.first_event_id = 1;
    char err[256];
    c.h = pp_http_new(c.base, &conf, NULL, err, sizeof(err));
    assert_non_null(c.h);
    c.port = pp_http_port(c.h);
    assert_true(c.port > 0);

    struct fake f = {3, {"P-A", "P-B", "P-C"}, {50, 80, NAN}, {70, 40, 10}};
    struct pp_http_provider p = {fake_count, fake_view, fake_day, &f};
    pp_http_set_provider(c.h, &p);
    pp_http_sample_day(c.h, pp_day_from_civil(2025, 7, 3));
    struct pp_alert a;
    make_alert(&a, "P-A", PP_ALERT_FIRING);
    pp_http_publish_alert(c.h, &a); /* seq 1: pushed out of the ring of 2 */
    make_alert(&a, "P-A", PP_ALERT_RESOLVED);
    pp_http_publish_alert(c.h, &a); /* seq 2 */
    make_alert(&a, "P-B", PP_ALERT_FIRING);
    pp_http_publish_alert(c.h, &a); /* seq 3 */

    c.poll = event_new(c.base, -1, EV_PERSIST, on_poll, &c);
    struct timeval tv = {0, 5000};
    event_add(c.poll, &tv);
    pthread_t t;
    pthread_create(&t, NULL, client, &c);
    event_base_dispatch(c.base);
    pthread_join(t, NULL);
    if (g_res.failures) {
        fail_msg("%d check(s) failed, first: %s", g_res.failures, g_res.why);
    }
    event_free(c.poll);
    pp_http_destroy(c.h);
    event_base_free(c.base);
}

/* A stream client that does not read is dropped once its unsent output
 * passes sse_client_buffer; the loop never waits for it. */
struct slow {
    struct event_base *base;
    struct pp_http *h;
    int fd;
    int rounds;
};

static void slow_tick(evutil_socket_t fd, short what, void *arg)
{
    struct slow *s = arg;
    (void)fd;
    (void)what;
    if (++s->rounds > 400) {
        event_base_loopbreak(s->base);
        return;
    }
    if (s->rounds < 20) {
        return; /* let the stream request be served first */
    }
    struct pp_alert a;
    make_alert(&a, "P-FLOOD", PP_ALERT_FIRING);
    for (int i = 0; i < 50; i++) {
        a.status = i % 2 ? PP_ALERT_RESOLVED : PP_ALERT_FIRING;
        pp_http_publish_alert(s->h, &a);
    }
}

static void test_slow_stream_client_dropped(void **state)
{
    (void)state;
    struct slow s = {0};
    s.base = event_base_new();
    struct pp_http_conf conf;
    pp_http_conf_defaults(&conf);
    conf.listen = "127.0.0.1:0";
    conf.sse_client_buffer = 8192;
    char err[256];
    s.h = pp_http_new(s.base, &conf, NULL, err, sizeof(err));
    assert_non_null(s.h);
    s.fd = connect_to(pp_http_port(s.h));
    assert_true(s.fd >= 0);
    int rcv = 4096;
    setsockopt(s.fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
    const char *req = "GET /v1/stream HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(write(s.fd, req, strlen(req)), (ssize_t)strlen(req));
    struct event *tick = event_new(s.base, -1, EV_PERSIST, slow_tick, &s);
    struct timeval tv = {0, 1000};
    event_add(tick, &tv);
    event_base_dispatch(s.base);
    event_free(tick);

    /* The server closed the connection: reading drains, then EOF. */
    char buf[65536];
    ssize_t r;
    size_t total = 0;
    struct timeval rt = {5, 0};
    setsockopt(s.fd, SOL_SOCKET, SO_RCVTIMEO, &rt, sizeof(rt));
    while ((r = read(s.fd, buf, sizeof(buf))) > 0) {
        total += (size_t)r;
    }
    assert_int_equal(r, 0);
    assert_true(total > 0);
    close(s.fd);
    pp_http_destroy(s.h);
    event_base_free(s.base);
}

/* The model provider compiles against the model's read API and reports an
 * empty model as such (the model's own tests cover its numbers). */
static void test_model_provider_empty(void **state)
{
    (void)state;
    struct pp_model_conf mc;
    pp_model_conf_defaults(&mc);
    struct pp_model *m = pp_model_new(&mc);
    struct pp_http_provider p;
    pp_http_model_provider(&p, m);
    assert_int_equal(p.count(p.src), 0);
    assert_int_equal(p.evaluated_day(p.src), INT32_MIN);
    struct pp_http_partner out;
    assert_int_equal(p.view(p.src, 0, &out), -1);
    pp_model_destroy(m);
}

static void test_bad_listen(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct pp_http_conf conf;
    pp_http_conf_defaults(&conf);
    char err[256];
    const char *bad[] = {"8080", ":8080", "127.0.0.1:", "127.0.0.1:70000", "[::1:80", "x:-1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        conf.listen = bad[i];
        err[0] = '\0';
        assert_null(pp_http_new(base, &conf, NULL, err, sizeof(err)));
        assert_non_null(strstr(err, "http.listen"));
    }
    event_base_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metrics_text_format),
        cmocka_unit_test(test_http_endpoints),
        cmocka_unit_test(test_slow_stream_client_dropped),
        cmocka_unit_test(test_model_provider_empty),
        cmocka_unit_test(test_bad_listen),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
