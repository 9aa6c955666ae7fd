/*
 * engine.c — one interface over the two processors (see engine.h).
 */
#include "engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "palloc.h"
#include "ptime.h"

struct pp_engine {
    enum pp_engine_kind kind;
    struct pp_model *model;
    struct pp_proc *proc;
    int64_t max_skew_ms;
    pp_engine_day_cb *day_cb;
    void *day_opaque;
};

void pp_engine_model_conf(const struct pp_app_conf *conf, struct pp_model_conf *out)
{
    *out = conf->model;
    memcpy(out->tenant, conf->proc.tenant, sizeof(out->tenant));
    out->allowed_lateness_ms = conf->proc.allowed_lateness_ms;
}

struct pp_engine *pp_engine_new(const struct pp_app_conf *conf)
{
    struct pp_engine *e = pp_xcalloc(1, sizeof(*e));
    e->kind = conf->engine == PP_ENGINE_TICKET_SURGE ? PP_ENGINE_TICKET_SURGE : PP_ENGINE_MODEL;
    if (e->kind == PP_ENGINE_MODEL) {
        struct pp_model_conf mc;
        pp_engine_model_conf(conf, &mc);
        e->model = pp_model_new(&mc);
        e->max_skew_ms = (int64_t)pp_model_max_skew_days(&mc) * PP_MS_PER_DAY;
    }
    else {
        e->proc = pp_proc_new(&conf->proc);
        e->max_skew_ms = (int64_t)PP_PROC_SKEW_DAYS * PP_MS_PER_DAY;
    }
    return e;
}

int pp_engine_set_conf(struct pp_engine *e, const struct pp_app_conf *conf, char *errstr,
                       size_t errstr_size)
{
    enum pp_engine_kind kind =
        conf->engine == PP_ENGINE_TICKET_SURGE ? PP_ENGINE_TICKET_SURGE : PP_ENGINE_MODEL;
    if (kind != e->kind) {
        snprintf(errstr, errstr_size, "key 'rules.engine': cannot change while running");
        return -1;
    }
    if (e->kind == PP_ENGINE_MODEL) {
        struct pp_model_conf mc;
        pp_engine_model_conf(conf, &mc);
        return pp_model_set_conf(e->model, &mc, errstr, errstr_size);
    }
    return pp_proc_set_conf(e->proc, &conf->proc, errstr, errstr_size);
}

void pp_engine_destroy(struct pp_engine *e)
{
    if (e == NULL) {
        return;
    }
    pp_model_destroy(e->model);
    pp_proc_destroy(e->proc);
    free(e);
}

enum pp_apply_result pp_engine_apply(struct pp_engine *e, const struct pp_event *ev)
{
    return e->model ? pp_model_apply(e->model, ev) : pp_proc_apply(e->proc, ev);
}

void pp_engine_advance(struct pp_engine *e, int64_t watermark_ms, pp_alert_cb *cb, void *opaque)
{
    if (e->model) {
        pp_model_advance(e->model, watermark_ms, cb, opaque);
    }
    else {
        pp_proc_advance(e->proc, watermark_ms, cb, opaque);
    }
}

int64_t pp_engine_max_skew_ms(const struct pp_engine *e)
{
    return e->max_skew_ms;
}

enum pp_engine_kind pp_engine_kind(const struct pp_engine *e)
{
    return e->kind;
}

struct pp_model *pp_engine_model(struct pp_engine *e)
{
    return e->model;
}

struct pp_proc *pp_engine_proc(struct pp_engine *e)
{
    return e->proc;
}

uint32_t pp_engine_partner_count(const struct pp_engine *e)
{
    return e->model ? pp_model_partner_count(e->model) : pp_proc_partner_count(e->proc);
}

uint64_t pp_engine_too_late(const struct pp_engine *e)
{
    return e->model ? pp_model_stats(e->model)->too_late : pp_proc_stats(e->proc)->too_late;
}

int32_t pp_engine_last_day(const struct pp_engine *e)
{
    return e->model ? pp_model_last_day(e->model) : pp_proc_last_eval_day(e->proc);
}

static void model_day(const struct pp_model *m, int32_t day, void *opaque)
{
    struct pp_engine *e = opaque;
    (void)m;
    e->day_cb(day, e->day_opaque);
}

static void proc_day(const struct pp_proc *ctx, int32_t day, void *opaque)
{
    struct pp_engine *e = opaque;
    (void)ctx;
    e->day_cb(day, e->day_opaque);
}

void pp_engine_set_day_cb(struct pp_engine *e, pp_engine_day_cb *cb, void *opaque)
{
    e->day_cb = cb;
    e->day_opaque = opaque;
    if (e->model) {
        pp_model_set_day_cb(e->model, cb ? model_day : NULL, e);
    }
    else {
        pp_proc_set_day_cb(e->proc, cb ? proc_day : NULL, e);
    }
}
