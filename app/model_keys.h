/*
 * model_keys.h — the `model.*` configuration keys (see model_keys.c).
 */
#ifndef PP_APP_MODEL_KEYS_H
#define PP_APP_MODEL_KEYS_H

#include <stddef.h>

#include "model.h"

enum pp_model_key_type { MK_DOUBLE, MK_U32, MK_I32, MK_BOOL };

struct pp_model_key {
    const char *key; /* "model.cp_enter" */
    enum pp_model_key_type type;
    size_t off; /* in struct pp_model_conf */
    const char *desc;
};

/* Terminated by an entry whose key is NULL. */
extern const struct pp_model_key pp_model_keys[];

#endif
