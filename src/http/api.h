/*
 * api: the daemon's REST routes (docs/daemon.md), JSON in and out on evhttp; every
 * answer goes through reply.h (one error envelope). Bad input never changes state.
 * The routes reach the daemon's parts through struct api_env, a list of the handles
 * they read, filled by the composition root (daemon.c); api knows no struct daemon.
 */
#ifndef MLO_API_H
#define MLO_API_H

#include <stdint.h>

struct config;
struct devmon;
struct discover;
struct event_base;
struct evhttp;
struct evhttp_request;
struct api_budget;
struct guard;
struct httpconn;
struct metrics;
struct notify;
struct proxy;
struct registry;
struct registry_view;
struct sched;

/* What the routes reach (borrowed: each outlives the api). */
struct api_env {
	struct event_base *base;
	struct evhttp *http;                 /* the server the routes are set on */
	struct devmon *dev;
	struct registry *reg;
	struct discover *disc;
	struct notify *notify;
	struct sched *sched;
	struct proxy *proxy;                 /* the /v1 routes; may be NULL */
	struct guard *guard;                 /* Host, Origin, key: before every route */
	const struct config *cfg;            /* replaced in place at SIGHUP */
	const struct registry_view *view;    /* the catalog as the routes show it */
	uint64_t started_ms;                 /* util_mono_ms at start */
	/* POST /models/scan: starts a scan (or joins the next one) that answers waiter
	 * when it is stored; -1 when too many requests wait already (the route answers
	 * 503). */
	int (*scan)(void *arg, struct evhttp_request *waiter);
	void *scan_arg;
};

/* The routes: their handles, the request counters and the connection layer. */
struct api {
	struct api_env env;
	struct metrics *metrics;             /* owned */
	struct httpconn *conn;               /* owned: cap, deadlines (httpconn.h) */
	struct api_budget *budget;           /* owned: /vram/budget's parsed headers */
};

/* Registers the routes on env->http and sets up the connection layer from env->cfg.
 * Returns a new api, or NULL. */
struct api *api_new(const struct api_env *env);
/* Applies env->cfg (after SIGHUP) to the connection layer. */
void api_conn_opts(struct api *a);
/* Drops the model headers /vram/budget keeps (a scan was stored: files may have
 * changed). a may be NULL. */
void api_budget_forget(struct api *a);
/* Frees a, its counters and its connection layer (after evhttp_free). */
void api_free(struct api *a);

#endif
