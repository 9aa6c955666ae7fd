/*
 * test_reload.c — SIGHUP reload of the engines (pp_engine_set_conf,
 * pp_model_set_conf, pp_proc_set_conf): thresholds change in place, while
 * anything that sizes the state (windows, ring width, retention), the
 * tenant, the lateness or the engine kind is refused with the key named and
 * nothing applied.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "engine.h"
#include "model.h"

static void test_model_reload(void **state)
{
    (void)state;
    struct pp_app_conf conf;
    pp_app_conf_defaults(&conf);
    struct pp_engine *e = pp_engine_new(&conf);
    char err[512];

    struct pp_app_conf next = conf;
    next.model.cp_enter = 42;
    assert_int_equal(pp_engine_set_conf(e, &next, err, sizeof(err)), 0);

    next.model.adopt_short_days += 1;
    assert_int_equal(pp_engine_set_conf(e, &next, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "key 'model.adopt_short_days'"));

    next = conf;
    next.model.state_days += 8;
    assert_int_equal(pp_engine_set_conf(e, &next, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "model.state_days"));

    next = conf;
    next.model.credit_mode = 3; /* invalid */
    assert_int_equal(pp_engine_set_conf(e, &next, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "credit_mode"));

    next = conf;
    snprintf(next.proc.tenant, sizeof(next.proc.tenant), "other");
    assert_int_equal(pp_engine_set_conf(e, &next, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "key 'tenant'"));

    next = conf;
    next.engine = PP_ENGINE_TICKET_SURGE;
    assert_int_equal(pp_engine_set_conf(e, &next, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "rules.engine"));
    pp_engine_destroy(e);
    pp_app_conf_free(&conf);
}

static void test_surge_reload(void **state)
{
    (void)state;
    struct pp_app_conf conf;
    pp_app_conf_defaults(&conf);
    conf.engine = PP_ENGINE_TICKET_SURGE;
    struct pp_engine *e = pp_engine_new(&conf);
    char err[512];
    struct pp_app_conf next = conf;
    next.proc.surge_threshold = 3;
    assert_int_equal(pp_engine_set_conf(e, &next, err, sizeof(err)), 0);
    next.proc.surge_window_days = 9;
    assert_int_equal(pp_engine_set_conf(e, &next, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "key 'rules.ticket_surge.window_days'"));
    pp_engine_destroy(e);
    pp_app_conf_free(&conf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model_reload),
        cmocka_unit_test(test_surge_reload),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
