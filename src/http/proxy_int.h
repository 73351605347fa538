/*
 * proxy_int: what proxy.c (requests, the queue, dispatch) and proxy_up.c (the upstream
 * transfer) share.
 */
#ifndef MLO_PROXY_INT_H
#define MLO_PROXY_INT_H

#include <curl/curl.h>
#include <stdint.h>

#include "proxy.h"
#include "proxy_route.h"

struct evbuffer;
struct evhttp_connection;

/* evhttp's timeouts on a connection between requests (api_init's evhttp_set_timeout);
 * lifted while a request waits or streams */
#define PROXY_IDLE_TIMEOUT_S 60

enum preq_state { PQ_WAITING, PQ_UPSTREAM };

/* One request of a /v1 route, from its arrival to its answer. */
struct preq {
	struct proxy *p;
	struct pmodel *pm;
	struct evhttp_request *req;    /* NULL once libevent freed it with its connection */
	struct evhttp_connection *evcon;
	enum preq_state state;
	const struct proxy_route *route; /* its row of proxy_route.c (static) */
	char *body;                    /* what goes upstream */
	size_t body_len;
	uint64_t seq, arrived_ms;
	unsigned overtaken;            /* later requests sent while this one waited blocked */
	int tried;                     /* a load was asked for it already */
	int gone;                      /* the client hung up */
	/* upstream */
	CURL *easy;
	struct curl_slist *hdrs;
	char errbuf[CURL_ERROR_SIZE];
	long status;
	char ctype[128];
	struct evbuffer *out;          /* the answer, while it is buffered */
	int streaming;                 /* a chunked answer is under way to the client */
	int paused;                    /* upstream paused: the client's buffer is full */
	struct preq *next;             /* in its model's waiting list, or the dead list */
	struct preq *lprev, *lnext;    /* every request not yet answered (p->live) */
	struct event *watch;           /* sees the client hang up (see proxy.c) */
};

/* A model that requests named: its waiting list (oldest first) and slots in use. */
struct pmodel {
	char *id;                      /* a registry id, or "ollama:NAME" */
	int ollama;
	unsigned inflight, n_wait;
	int blocked;                   /* the last look found it waiting for busy models */
	uint64_t seen_gen;             /* p->gen at that look */
	struct preq *head, *tail;
	struct pmodel *next;
};

/* A name a request used and the model it resolved to (resolve() asks the registry). */
struct pname {
	char *name, *id;
	enum proxy_kind kind;          /* the model's (PK_ANY for Ollama's) */
	struct pname *next;
};

struct proxy {
	struct proxy_env env;          /* what it reaches (proxy.h), copied */
	struct pname *names;           /* forgotten after each scan and reload */
	size_t n_names;
	struct curlev *cev;
	struct event *kick_ev, *reap_ev, *tick_ev;
	struct pmodel *models;
	struct preq *dead;             /* closed by their clients, freed on a later turn */
	struct preq *live;
	struct evbuffer *scratch;
	unsigned n_wait, n_inflight;
	uint64_t seq;
	uint64_t gen;                  /* bumped by news that may unblock a model */
	int stopping;
	/* counters for /metrics */
	uint64_t n_requests, n_refused, n_upstream_errors, n_cancelled, n_answered, n_paused;
};

/* Starts r's upstream transfer to base (an "http://host:port" URL), sending key (a
 * child's API key, borrowed; NULL: none) as "Authorization: Bearer". 0, or -1 with r
 * answered (502). */
int proxy_up_start(struct preq *r, const char *base, const char *key);
/* Stops r's transfer (the client went away). */
void proxy_up_abort(struct preq *r);
/* curlev's done callback: a transfer ended. */
void proxy_up_done(void *arg, CURL *easy, CURLcode rc);
/* Before r's last answer: the connection is no longer watched for r. */
void proxy_detach(struct preq *r);
/* r has its answer (or its error): frees its slot, r and wakes the queue. */
void proxy_finish(struct preq *r);


#endif
