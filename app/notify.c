/*
 * notify.c — sd_notify from libsystemd (see notify.h). READY=1 is sent once
 * per process: the unit's Type=notify start-up ends there.
 */
#include "notify.h"

#include <stdio.h>

#include <systemd/sd-daemon.h>

#include "log.h"

static int ready_sent;

void pp_app_notify_ready(const char *status)
{
    if (ready_sent) {
        return;
    }
    ready_sent = 1;
    int rc = sd_notifyf(0, "READY=1\nSTATUS=%s", status ? status : "ready");
    if (rc > 0) {
        pp_log(PP_LOG_INFO, "msg=\"notified the service manager\" state=ready");
    }
}

void pp_app_notify_stopping(void)
{
    sd_notify(0, "STOPPING=1");
}

void pp_app_notify_status(const char *status)
{
    sd_notifyf(0, "STATUS=%s", status);
}
