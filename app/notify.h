/*
 * notify.h — tell a service manager how the service is doing (systemd's
 * sd_notify protocol: READY=1 once the consumer holds its partitions,
 * STOPPING=1 on shutdown, STATUS= lines). A no-op when not started by
 * systemd (NOTIFY_SOCKET unset), so the same binary runs anywhere.
 */
#ifndef PP_APP_NOTIFY_H
#define PP_APP_NOTIFY_H

void pp_app_notify_ready(const char *status);
void pp_app_notify_stopping(void);
void pp_app_notify_status(const char *status);

#endif
