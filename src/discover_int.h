/*
 * discover_int: what the files of the discoverer share, and nothing else includes: the
 * backends and their snapshots, the requests and sockets in flight, and the calls that
 * cross between discover.c (the public API, rounds, the JSON it answers with) and
 * discover_http.c (curl multi on the libevent loop, and what each answer means). Not a
 * module of its own: private to discover.
 */
#ifndef MLO_DISCOVER_INT_H
#define MLO_DISCOVER_INT_H

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

/* A socket curl asked us to watch. */
struct sock {
	struct event *ev;
	struct sock *prev, *next;
};

struct discover {
	struct event_base *base;
	CURLM *multi;
	struct event *timer;
	struct backend *backends;
	size_t n_backends;
	size_t backends_pending;  /* backends of this round not done yet */
	long timeout_ms;
	size_t max_body;
	discover_cb cb;
	void *arg;
	int busy;
	struct req *reqs;         /* in flight */
	struct sock *socks;       /* watched for curl */
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

/* Unlinks and frees a watched socket, its event included. */
void discover_sock_free(struct discover *d, struct sock *s);
/* curl's socket callback (CURLMOPT_SOCKETFUNCTION); arg is the discoverer. */
int discover_sock_set(CURL *easy, curl_socket_t fd, int what, void *arg, void *sockp);
/* The timer's libevent callback: curl's timeouts, then the finished transfers. May free
 * the discoverer. */
void discover_timer_event(evutil_socket_t fd, short what, void *arg);
/* curl's timer callback (CURLMOPT_TIMERFUNCTION); arg is the discoverer. */
int discover_timer_set(CURLM *multi, long ms, void *arg);
/* Unlinks and frees a request, its easy handle included (removed from the multi first). */
void discover_req_free(struct discover *d, struct req *r);
/* Starts GET kind on backend b. On failure the error is on b->next, nothing is in flight
 * and b->pending is unchanged. */
void discover_req_start(struct discover *d, struct backend *b, enum req_kind kind);

#endif
