/*
 * discover_int: what the files of the discoverer share, and nothing else includes: the
 * backends and their snapshots, the requests and sockets in flight, and the calls that
 * cross between discover.c (the public API, rounds, the JSON it answers with) and
 * discover_http.c (the requests on curlev, and what each answer means). Not a
 * module of its own: private to discover.
 */
#ifndef MLO_DISCOVER_INT_H
#define MLO_DISCOVER_INT_H

#include "curlev.h"
#include "discover.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <time.h>

enum be_type { BE_LLAMA, BE_OLLAMA };

enum req_kind {
	RQ_HEALTH, RQ_PROPS, RQ_MODELS,   /* llama-server */
	RQ_VERSION, RQ_TAGS, RQ_PS        /* Ollama */
};

/* What one round learned about a backend. */
struct snap {
	int detected;
	int loading;        /* llama-server answered 503 "Loading model" */
	char *version;
	char *model_path;   /* llama-server's /props */
	json_t *models;     /* llama: ids (strings); Ollama: tags (objects, see tag_entry) */
	json_t *loaded;     /* Ollama: /api/ps entries (objects, see ps_entry) */
	char *error;        /* "GET /x: why; GET /y: why", or NULL */
	time_t checked_at;  /* 0: never */
};

struct backend {
	enum be_type type;
	char *url;          /* without a trailing slash */
	struct snap cur;    /* published: the last finished round */
	struct snap next;   /* being filled by the round in flight */
	int pending;        /* requests of this round in flight */
	int changed;        /* up/down differs from the round before */
};

/* One HTTP request in flight. */
struct req {
	struct discover *d;
	struct backend *b;
	enum req_kind kind;
	CURL *easy;
	char *buf;          /* the body so far, never over max_body */
	size_t len, cap;
	int too_big;
	char errbuf[CURL_ERROR_SIZE];
	struct req *prev, *next;
};

struct discover {
	struct event_base *base;
	struct curlev *ev;        /* the HTTP: curl multi on the loop */
	struct event *timer;      /* ends a round that started nothing, from the loop */
	struct backend *backends;
	size_t n_backends;
	size_t backends_pending;  /* backends of this round not done yet */
	long timeout_ms;
	size_t max_body;
	discover_cb cb;
	void *arg;
	int busy;
	struct req *reqs;         /* in flight */
	int in_cb;                /* running the user's callback */
	int dead;                 /* discover_free was called from the callback */
};

/* A new reference: key's string value in o, or JSON null. */
json_t *discover_jstr(const json_t *o, const char *key);
/* Publishes what backend b learned in this round (next becomes cur) and counts it done. */
void discover_backend_done(struct discover *d, struct backend *b);
/* Ends the round: runs the callback for every backend that went up or down. May free d
 * (discover_free called from the callback): the caller touches d no more. */
void discover_round_end(struct discover *d);

/* curlev's done callback: a request is over (arg is the discoverer); ends the round
 * when it was the last. May free the discoverer. */
void discover_http_done(void *arg, CURL *easy, CURLcode rc);
/* Unlinks and frees a request, its easy handle included (out of the multi already). */
void discover_req_free(struct discover *d, struct req *r);
/* Starts GET kind on backend b. On failure the error is on b->next, nothing is in flight
 * and b->pending is unchanged. */
void discover_req_start(struct discover *d, struct backend *b, enum req_kind kind);

#endif
