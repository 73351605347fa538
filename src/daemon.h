/*
 * daemon: the state of mloffloadd, owned by one libevent loop. Every module that
 * handles a request or a timer reaches the rest through this struct; nothing in it is
 * touched from another thread (the scan worker hands its result back through a pipe).
 */
#ifndef MLO_DAEMON_H
#define MLO_DAEMON_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "config.h"
#include "registry.h"

struct event_base;
struct event;
struct evhttp;
struct evhttp_request;
struct devmon;
struct discover;
struct metrics;
struct notify;
struct sched;
struct proxy;
struct guard;
struct httpconn;

#define DAEMON_MAX_SCAN_WAITERS 64

struct daemon {
	struct config cfg;
	struct event_base *base;
	struct evhttp *http;
	struct httpconn *conn;       /* the connection layer under http (httpconn.c) */
	struct devmon *dev;
	struct registry *reg;
	struct discover *disc;
	struct metrics *metrics;
	struct notify *notify;
	struct sched *sched;
	struct proxy *proxy;
	struct guard *guard;         /* Host, Origin and API key checks (guard.h) */
	struct event *tick_ev;
	time_t started;
	uint64_t started_ms;
	/* scans: one at a time, in a worker thread */
	int scanning;
	int scan_rescan;             /* another scan was asked for while one ran */
	pthread_t scan_thread;
	int scan_pipe[2];
	struct event *scan_ev;
	struct evhttp_request *scan_waiters[DAEMON_MAX_SCAN_WAITERS];  /* the running scan's */
	size_t n_scan_waiters;
	struct evhttp_request *next_waiters[DAEMON_MAX_SCAN_WAITERS];  /* the next scan's */
	size_t n_next_waiters;
	int argc;                    /* the command line, for SIGHUP (flags override the file) */
	char **argv;
	uint64_t scans_total, scan_errors_total;
	struct event *sample_ev, *rescan_ev, *discover_ev, *watchdog_ev;
	struct event *sig_term, *sig_int, *sig_hup;
	int stopping;
	/* answers derived from the registry, rebuilt when a scan is stored: the model
	 * objects serialized and comma-joined, the counts by state, the last scan */
	char *models_json;
	json_t *model_counts;
	json_t *last_scan;
};

/* Rebuilds the cached answers from the registry. */
void daemon_refresh(struct daemon *d);

/* Starts a scan of the model folders unless one runs (then one more follows it). When
 * waiter is not NULL, it is answered with the counts when the scan is stored. */
void daemon_scan(struct daemon *d, struct evhttp_request *waiter);

#endif
