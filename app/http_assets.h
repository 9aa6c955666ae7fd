/*
 * http_assets.h — the dashboard files (app/dashboard/) compiled into the
 * binary by app/dashboard/embed.cmake, so `partnerpulse demo` serves its UI
 * with nothing on disk and no CDN. Private to app/http.c.
 */
#ifndef PP_APP_HTTP_ASSETS_H
#define PP_APP_HTTP_ASSETS_H

#include <stddef.h>

struct pp_http_asset {
    const char *path; /* URL path, "/" for index.html */
    const char *content_type;
    const unsigned char *data;
    size_t len;
};

/* Terminated by an entry whose path is NULL. */
extern const struct pp_http_asset pp_http_assets[];

#endif
