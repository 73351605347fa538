/*
 * httpconn: the connection layer under evhttp (libevent 2.1). It sees every accepted
 * connection and owns its close callback, so that it can cap how many are open
 * (max_connections: beyond it the listener pauses and clients wait in the backlog),
 * survive running out of descriptors (the listener pauses, one log line per episode),
 * put deadlines on the request head and body (a client trickling bytes is cut off),
 * answer libevent's own parse errors in the daemon's JSON shape instead of HTML, and
 * close after such an error "lingering" (input read and dropped for a while) so that
 * the client reads the answer instead of a reset. Modules that want to know when a
 * client connection closes subscribe with httpconn_on_close, never with
 * evhttp_connection_set_closecb (it holds one callback, and this layer needs it).
 */
#ifndef MLO_HTTPCONN_H
#define MLO_HTTPCONN_H

struct event_base;
struct evhttp;
struct evhttp_bound_socket;
struct evhttp_connection;
struct evhttp_request;
struct httpconn;

struct httpconn_opts {
	unsigned max_connections;   /* open client connections at most (0: no cap) */
	unsigned header_timeout_s;  /* from a request's first byte to its blank line */
	unsigned body_timeout_s;    /* from the blank line to the last byte of the body */
};

/* Answers a request that libevent could not parse (or whose method it does not know)
 * with status; the connection closes after it. */
typedef void (*httpconn_error_fn)(struct evhttp_request *req, int status);

/* Sets the layer up on http (before it listens). Returns the layer (free with
 * httpconn_free), or NULL. One per process. */
struct httpconn *httpconn_new(struct event_base *base, struct evhttp *http,
    const struct httpconn_opts *o, httpconn_error_fn err);
/* Takes over the accept errors and pauses of bs's listener. Returns 0 or -1. */
int httpconn_listen(struct httpconn *hc, struct evhttp_bound_socket *bs);
/* Changes the deadlines and the cap (SIGHUP). */
void httpconn_set_opts(struct httpconn *hc, const struct httpconn_opts *o);
/* Client connections open now. */
unsigned httpconn_count(const struct httpconn *hc);
/* want, or less when the descriptor limit (RLIMIT_NOFILE) leaves no room for it and
 * for the daemon's own files (logged). */
unsigned httpconn_default_max(unsigned want);
/* After evhttp_free: frees what is left (lingering sockets, timers). NULL is fine. */
void httpconn_free(struct httpconn *hc);

/* Calls cb(evcon, arg) when the client connection evcon closes (inside libevent's
 * teardown of it: the callback must not free evcon). One subscriber per connection;
 * cb NULL unsubscribes. On a connection this layer does not track (no httpconn in the
 * process), it falls back to evhttp_connection_set_closecb. */
void httpconn_on_close(struct evhttp_connection *evcon,
    void (*cb)(struct evhttp_connection *, void *), void *arg);

#endif
