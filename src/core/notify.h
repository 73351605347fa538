/*
 * notify: the daemon's alerts. Every state change or alert becomes one event,
 * {"id": N, "type": "model.loaded", "at": "2025-01-02T03:04:05.678Z", "data": {...}},
 * with N counting up from 1 in this process. An event goes out two ways:
 *   - webhooks: POSTed (Content-Type: application/json) to every hook whose filter
 *     takes its type, through one libcurl multi handle on the daemon's libevent loop;
 *     one request in flight per hook (so a hook sees its events in order), retried
 *     with exponential backoff on a connection error, a timeout, 5xx or 429, never on
 *     other answers; each hook has a bounded queue that drops its oldest event when full;
 *   - Server-Sent Events: `GET /events` streams `id: N\nevent: TYPE\ndata: JSON\n\n`,
 *     replays what followed Last-Event-ID from a ring of the last NOTIFY_RING events,
 *     sends a ":keepalive" comment every 15 s, and drops a client whose unsent output
 *     passes a cap.
 * Nothing here blocks the loop; all of it runs on the loop's thread.
 */
#ifndef MLO_NOTIFY_H
#define MLO_NOTIFY_H

#include <jansson.h>
#include <stddef.h>

struct event_base;
struct evhttp_request;
struct notify;

#define NOTIFY_RING 256            /* events kept for Last-Event-ID replay */
#define NOTIFY_NO_RETRY (-1)       /* notify_hook.max_retries: one try only */

/* The event types the daemon emits (filters may name only these): "model.loaded",
 * "model.unloaded", "model.failed", "vram.pressure", "vram.recovered",
 * "backend.down", "backend.up", "scan.finished", "model.loading" (a child started),
 * "model.queued" (a load waits for evictions), "webhook.failed" (a hook gave up on an
 * event; streamed and kept in the ring, never sent to a hook). NULL-terminated. */
extern const char *const notify_types[];

/* One webhook. Zero fields take the defaults; notify_new copies what it needs. */
struct notify_hook {
	const char *url;             /* http://host[:port][/path] (http only) */
	const char *const *events;   /* types sent to this hook; n_events == 0: all */
	size_t n_events;
	int max_retries;             /* retries after the first try: 0: 3, NOTIFY_NO_RETRY:
	                              * none, at most 10 */
	long timeout_ms;             /* per try, connecting included: 0: 5000 */
	long retry_base_ms;          /* first backoff, doubled each retry (at most 60 s):
	                              * 0: 500 */
	size_t max_queue;            /* events waiting for this hook: 0: 256 */
};

/* A notifier on base with n_hooks webhooks (hooks is borrowed). Returns NULL, with
 * the reason logged, on a bad hook (not http://, unknown event type, a limit out of
 * range) or when libcurl cannot start. Free with notify_free. */
struct notify *notify_new(struct event_base *base, const struct notify_hook *hooks,
    size_t n_hooks);

/* Ends every SSE stream (each client gets its last bytes and a closed connection),
 * cancels the transfers in flight and drops what is queued. n may be NULL. */
void notify_free(struct notify *n);

/* Emits one event of type (a-z, 0-9, '.', '_', '-'; at most 64 chars; other names are
 * logged and ignored) with data (borrowed; NULL: {}): queued for every matching hook,
 * written to every SSE client, kept in the replay ring. Never blocks. */
void notify_emit(struct notify *n, const char *type, json_t *data);

/* Takes over req (a GET) as an SSE stream: answers 200 text/event-stream, replays the
 * ring after the request's Last-Event-ID, then streams every event. Returns 0 when
 * streaming, or -1 after answering 503 (too many clients) or 405 (not a GET) itself.
 * Either way req is no longer the caller's. */
int notify_sse_attach(struct notify *n, struct evhttp_request *req);

/* SSE limits: at most max_subscribers clients (0: 64), at most max_unsent bytes
 * waiting in a client's connection before it is dropped (0: 1 MiB), a keepalive
 * comment every keepalive_ms (0: 15000). Applies to streams from now on. */
void notify_sse_set_limits(struct notify *n, size_t max_subscribers, size_t max_unsent,
    long keepalive_ms);

/* A new JSON object for /metrics and /status: {"events": emitted (= the last id),
 * "hooks": [{"url", "sent", "failed", "dropped", "retries", "queued", "in_flight",
 * "last_error"}], "sse": {"subscribers", "max_subscribers", "dropped_slow"}}. */
json_t *notify_stats_json(const struct notify *n);

#endif
