/*
 * notify_int: what notify.c (events, the ring, webhooks over curl multi) and
 * notify_sse.c (the /events streams) share, and nothing else includes.
 */
#ifndef MLO_NOTIFY_INT_H
#define MLO_NOTIFY_INT_H

#include "curlev.h"
#include "notify.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <stdint.h>

/* One emitted event, shared by the ring, the hook queues and the transfers in flight;
 * freed when the last of them lets go (nev_unref). */
struct nev {
	int refs;
	uint64_t id;
	int type_idx;         /* index in notify_types, or -1 */
	char *json;           /* the webhook body */
	size_t json_len;
	char *sse;            /* "id: N\nevent: TYPE\ndata: JSON\n\n" */
	size_t sse_len;
};

/* One SSE client. */
struct nsub {
	struct notify *n;
	struct evhttp_request *req;        /* NULL once libevent freed it */
	struct evhttp_connection *evcon;   /* valid while !closed */
	int closed;                        /* the connection went away: reap later */
	struct nsub *prev, *next;
};

struct hook;

struct notify {
	struct event_base *base;
	uint64_t last_id;                  /* of the last event emitted; 0: none */
	struct nev *ring[NOTIFY_RING];     /* the last events, oldest at ring_first */
	size_t ring_first, ring_len;

	struct hook *hooks;
	size_t n_hooks;
	struct curlev *ev;                 /* curl multi on the loop */
	struct curl_slist *headers;        /* of every POST */

	struct nsub *subs;                 /* SSE clients, open and closed */
	size_t n_subs;                     /* open ones */
	size_t max_subs, max_unsent;
	long keepalive_ms;
	struct event *keepalive;
	struct event *reap;                /* frees closed clients, outside their callbacks */
	struct evbuffer *scratch;
	uint64_t sse_dropped;              /* clients dropped for being too slow */
};

/* Lets go of one reference to e; frees it with the last. */
void notify_nev_unref(struct nev *e);
/* Writes e to every SSE client (dropping those past max_unsent). */
void notify_sse_broadcast(struct notify *n, const struct nev *e);
/* Sets up the SSE side of n (timers, scratch buffer). Returns 0 or -1. */
int notify_sse_init(struct notify *n);
/* Ends every SSE stream and frees the SSE side of n. */
void notify_sse_fini(struct notify *n);

#endif
