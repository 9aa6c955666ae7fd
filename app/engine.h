/*
 * engine.h — the processor the service runs, chosen by `rules.engine`:
 * the MODEL.md model (processors/model/) or the walking skeleton's single
 * TICKET_SURGE rule (processors/proc.h). Both have the same shape — apply an
 * event, advance the watermark, receive alert transitions — so the pipeline,
 * the backtest and the HTTP API drive either through these calls.
 */
#ifndef PP_APP_ENGINE_H
#define PP_APP_ENGINE_H

#include <stdint.h>

#include "alert.h"
#include "config.h"
#include "event.h"
#include "model.h"
#include "proc.h"

enum pp_engine_kind { PP_ENGINE_MODEL = 0, PP_ENGINE_TICKET_SURGE = 1 };

struct pp_engine;

/* The model's configuration as the engine will use it: conf->model with the
 * service-wide tenant and allowed lateness. */
void pp_engine_model_conf(const struct pp_app_conf *conf, struct pp_model_conf *out);

/* conf is read during the call only. Never NULL (aborts on OOM). */
struct pp_engine *pp_engine_new(const struct pp_app_conf *conf);
void pp_engine_destroy(struct pp_engine *e);
/* SIGHUP reload: applies conf's model.* or rules.* parameters to the running
 * engine, keeping its state. -1 with errstr naming the key when the engine
 * kind or anything that sizes the state would change (nothing applied). */
int pp_engine_set_conf(struct pp_engine *e, const struct pp_app_conf *conf, char *errstr,
                       size_t errstr_size);

enum pp_apply_result pp_engine_apply(struct pp_engine *e, const struct pp_event *ev);
void pp_engine_advance(struct pp_engine *e, int64_t watermark_ms, pp_alert_cb *cb, void *opaque);

/* How far (event time) one input partition may run ahead of the slowest
 * before its events no longer fit the engine's state: the pipeline pauses
 * partitions beyond it. */
int64_t pp_engine_max_skew_ms(const struct pp_engine *e);

enum pp_engine_kind pp_engine_kind(const struct pp_engine *e);
/* The underlying processor, or NULL when the engine is the other kind. */
struct pp_model *pp_engine_model(struct pp_engine *e);
struct pp_proc *pp_engine_proc(struct pp_engine *e);
uint32_t pp_engine_partner_count(const struct pp_engine *e);
uint64_t pp_engine_too_late(const struct pp_engine *e);
/* Called after each evaluated day (views then describe that day). */
typedef void(pp_engine_day_cb)(int32_t day, void *opaque);
void pp_engine_set_day_cb(struct pp_engine *e, pp_engine_day_cb *cb, void *opaque);

/* The last evaluated (closed) day, INT32_MIN before the first. */
int32_t pp_engine_last_day(const struct pp_engine *e);

#endif
