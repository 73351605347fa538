/*
 * notify_sse: the /events streams (see notify.h). Each client is an evhttp request
 * answered with evhttp_send_reply_start and fed with evhttp_send_reply_chunk.
 *
 * Going away: evhttp tells us through the connection's close callback, from inside
 * its own teardown, so the callback only marks the client closed and wakes the reap
 * event, which frees it on a later loop turn. When the client hung up, libevent has
 * detached the request from the dying connection and left it to us (we free it with
 * evhttp_send_reply_end); when the server itself is being freed, the request is still
 * on the connection and libevent frees it right after the callback.
 *
 * Caps: a client whose connection holds more than max_unsent unsent bytes is dropped
 * (a last comment says why); what a client sends after its request is read up to
 * SSE_MAX_INPUT and no further; a connection that makes no write progress for
 * SSE_WRITE_TIMEOUT_S is closed by libevent. There is no read timeout: a stream
 * client never sends anything.
 */
#include "httpconn.h"
#include "notify_int.h"
#include "reply.h"
#include "util.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define SSE_MAX_SUBS 64
#define SSE_MAX_UNSENT (1024 * 1024)
#define SSE_KEEPALIVE_MS 15000L
#define SSE_WRITE_TIMEOUT_S 60
#define SSE_MAX_INPUT 4096

static void sub_unlink(struct notify *n, struct nsub *s)
{
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		n->subs = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
}

/* Ends an open client's stream (after a last ": why" comment when why is not NULL)
 * and frees it. Not from its close callback. */
static void sub_end(struct notify *n, struct nsub *s, const char *why)
{
	if (why != NULL) {
		evbuffer_add_printf(n->scratch, ": %s\n\n", why);
		evhttp_send_reply_chunk(s->req, n->scratch);
		evbuffer_drain(n->scratch, evbuffer_get_length(n->scratch));
	}
	httpconn_on_close(s->evcon, NULL, NULL);
	/* "Connection: close" went out with the headers: libevent closes the connection
	 * once this is written (or on its write timeout) and frees the request */
	evhttp_send_reply_end(s->req);
	sub_unlink(n, s);
	n->n_subs--;
	free(s);
}

/* Frees a closed client; a request libevent left to us goes with it. */
static void sub_reap(struct notify *n, struct nsub *s)
{
	if (s->req != NULL)
		evhttp_send_reply_end(s->req);   /* no connection: only frees it */
	sub_unlink(n, s);
	free(s);
}

static void reap_event(evutil_socket_t fd, short what, void *arg)
{
	struct notify *n = arg;
	struct nsub *s, *next;

	for (s = n->subs; s != NULL; s = next) {
		next = s->next;
		if (s->closed)
			sub_reap(n, s);
	}
}

/* evhttp's close callback, from inside the connection's teardown: mark, reap later. */
static void on_close(struct evhttp_connection *evcon, void *arg)
{
	struct nsub *s = arg;
	struct notify *n = s->n;

	if (evhttp_request_get_connection(s->req) != NULL)
		s->req = NULL;   /* still on the connection: freed with it */
	s->evcon = NULL;
	s->closed = 1;
	n->n_subs--;
	event_active(n->reap, EV_TIMEOUT, 0);
}

/* Queues len bytes of p for client s. Returns 0, or -1 when s was dropped (freed)
 * for having more than max_unsent bytes waiting. */
static int sub_write(struct notify *n, struct nsub *s, const char *p, size_t len)
{
	struct evbuffer *out =
	    bufferevent_get_output(evhttp_connection_get_bufferevent(s->evcon));

	if (evbuffer_get_length(out) + len > n->max_unsent) {
		n->sse_dropped++;
		log_warnx("notify: /events client dropped: over %zu bytes unsent", n->max_unsent);
		sub_end(n, s, "dropped: this client reads too slowly");
		return -1;
	}
	evbuffer_add(n->scratch, p, len);
	evhttp_send_reply_chunk(s->req, n->scratch);
	/* a reply without a body (HEAD) leaves it there */
	evbuffer_drain(n->scratch, evbuffer_get_length(n->scratch));
	return 0;
}

static void keepalive_arm(struct notify *n)
{
	struct timeval tv = { n->keepalive_ms / 1000, (n->keepalive_ms % 1000) * 1000 };

	event_add(n->keepalive, &tv);
}

static void keepalive_event(evutil_socket_t fd, short what, void *arg)
{
	static const char ka[] = ":keepalive\n\n";
	struct notify *n = arg;
	struct nsub *s, *next;

	for (s = n->subs; s != NULL; s = next) {
		next = s->next;
		if (!s->closed)
			sub_write(n, s, ka, sizeof ka - 1);
	}
	if (n->n_subs == 0)
		event_del(n->keepalive);
}

void notify_sse_broadcast(struct notify *n, const struct nev *e)
{
	struct nsub *s, *next;

	for (s = n->subs; s != NULL; s = next) {
		next = s->next;
		if (!s->closed)
			sub_write(n, s, e->sse, e->sse_len);
	}
}

/* 503 with the daemon's error envelope and a Retry-After. */
static void refuse_busy(struct notify *n, struct evhttp_request *req)
{
	reply_retry_after(req);
	reply_error(req, 503, "too_many_subscribers", "at most %zu clients on /events",
	    n->max_subs);
}

int notify_sse_attach(struct notify *n, struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
	struct timeval wtv = { SSE_WRITE_TIMEOUT_S, 0 };
	struct bufferevent *bev;
	const char *v;
	long long last = -1;
	struct nsub *s;
	const struct nev *e;

	if (evcon == NULL) {   /* already gone: only the request is left to free */
		evhttp_send_reply_end(req);
		return -1;
	}
	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
		evhttp_add_header(oh, "Allow", "GET");
		evhttp_send_error(req, 405, NULL);
		return -1;
	}
	if (n->n_subs >= n->max_subs) {
		log_warnx("notify: /events refused: %zu clients already", n->n_subs);
		refuse_busy(n, req);
		return -1;
	}
	v = evhttp_find_header(evhttp_request_get_input_headers(req), "Last-Event-ID");
	if (v != NULL && util_parse_int(v, 0, LLONG_MAX, &last) != 0)
		last = -1;   /* not one of ours: no replay */
	evhttp_add_header(oh, "Content-Type", "text/event-stream");
	evhttp_add_header(oh, "Cache-Control", "no-cache");
	evhttp_add_header(oh, "X-Accel-Buffering", "no");
	evhttp_add_header(oh, "Connection", "close");
	evhttp_send_reply_start(req, 200, "OK");
	bev = evhttp_connection_get_bufferevent(evcon);
	bufferevent_set_timeouts(bev, NULL, &wtv);
	bufferevent_setwatermark(bev, EV_READ, 0, SSE_MAX_INPUT);

	s = xcalloc(1, sizeof *s);
	s->n = n;
	s->req = req;
	s->evcon = evcon;
	s->next = n->subs;
	if (n->subs != NULL)
		n->subs->prev = s;
	n->subs = s;
	n->n_subs++;
	httpconn_on_close(evcon, on_close, s);
	if (!event_pending(n->keepalive, EV_TIMEOUT, NULL))
		keepalive_arm(n);

	/* an id past ours is from an earlier run of the daemon: all we have is news */
	if (last >= 0 && (unsigned long long)last > n->last_id)
		last = 0;
	for (size_t i = 0; last >= 0 && i < n->ring_len; i++) {
		e = n->ring[(n->ring_first + i) % NOTIFY_RING];
		if (e->id > (unsigned long long)last && sub_write(n, s, e->sse, e->sse_len) != 0)
			break;   /* dropped: the replay alone was over the cap */
	}
	return 0;
}

void notify_sse_set_limits(struct notify *n, size_t max_subscribers, size_t max_unsent,
    long keepalive_ms)
{
	n->max_subs = max_subscribers != 0 ? max_subscribers : SSE_MAX_SUBS;
	n->max_unsent = max_unsent != 0 ? max_unsent : SSE_MAX_UNSENT;
	n->keepalive_ms = keepalive_ms > 0 ? keepalive_ms : SSE_KEEPALIVE_MS;
	if (event_pending(n->keepalive, EV_TIMEOUT, NULL))
		keepalive_arm(n);
}

int notify_sse_init(struct notify *n)
{
	n->keepalive = event_new(n->base, -1, EV_PERSIST, keepalive_event, n);
	n->reap = event_new(n->base, -1, 0, reap_event, n);
	n->scratch = evbuffer_new();
	if (n->keepalive == NULL || n->reap == NULL || n->scratch == NULL)
		return -1;
	notify_sse_set_limits(n, 0, 0, 0);
	return 0;
}

void notify_sse_fini(struct notify *n)
{
	while (n->subs != NULL) {
		if (n->subs->closed)
			sub_reap(n, n->subs);
		else
			sub_end(n, n->subs, NULL);
	}
	if (n->keepalive != NULL)
		event_free(n->keepalive);
	if (n->reap != NULL)
		event_free(n->reap);
	if (n->scratch != NULL)
		evbuffer_free(n->scratch);
}
