/*
 * notify_sink: what test_notify (webhooks) and test_notify_sse (the /events streams)
 * share: the event loop they run on and bounded waits on it, an evhttp server on
 * 127.0.0.1, and the webhook sink built on it, which records what arrives and can
 * answer an error status to the first K requests or hold requests unanswered.
 */
#ifndef MLO_NOTIFY_SINK_H
#define MLO_NOTIFY_SINK_H

#include <event2/event.h>
#include <event2/http.h>

#define WAIT_LIMIT_S 10   /* a wait that takes longer fails the test */
#define SINK_MAX 64

/* The loop of the test running now (made by setup, freed by teardown). */
extern struct event_base *base;

/* Runs the loop until done(arg) or WAIT_LIMIT_S; returns 1 if done() came. */
int run_until(int (*done)(void *), void *arg);
/* Runs the loop for ms milliseconds. */
void run_for(long ms);

/* An evhttp server on 127.0.0.1 and a port the kernel chose; returns it in *port. */
struct evhttp *http_listen(void (*cb)(struct evhttp_request *, void *), void *arg,
    int *port);

struct sink {
	struct evhttp *http;
	int port;
	int fail_k;                  /* answer fail_status to the first fail_k requests */
	int fail_status;
	int hang;                    /* hold requests unanswered */
	int n_reqs;                  /* every request that arrived */
	int n_got;                   /* answered 200 */
	char path[SINK_MAX][64];
	char *body[SINK_MAX];
	char ctype[64];
	struct evhttp_request *held[SINK_MAX];
	int n_held;
};

/* Starts the sink on a fresh port (s is zeroed first). */
void sink_start(struct sink *s);
/* Answers the held requests 200 (recorded) and stops holding. */
void sink_release(struct sink *s);
/* Answers what is held, frees the server and the recorded bodies. */
void sink_stop(struct sink *s);

struct want {
	struct sink *s;
	int n;
};

/* run_until conditions on a struct want: n answered 200; n arrived. */
int sink_got(void *arg);
int sink_reqs(void *arg);

/* cmocka setup and teardown: a fresh loop per test. */
int setup(void **state);
int teardown(void **state);

#endif
