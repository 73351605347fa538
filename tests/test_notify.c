/*
 * test_notify: alerts on a real libevent loop. Webhooks go to a sink HTTP server that
 * this test runs on 127.0.0.1 (evhttp on the same loop): it records what arrives and
 * can answer an error status to the first K requests or hold requests unanswered.
 * Covers: the event JSON and its Content-Type, filters, retries after 500 and 429 (the
 * attempts counted at the sink), no retry after 400, a dead port and a hung server
 * (failed after the tries while a 10 ms ticker keeps firing), the queue dropping its
 * oldest events, freeing with transfers in flight and retries pending, bad hooks and
 * bad types. SSE through raw socket clients to an evhttp server that calls
 * notify_sse_attach: events in order with id/event/data lines, Last-Event-ID replay,
 * keepalive comments, a client that hangs up, the subscriber cap (503), a slow client
 * dropped with a last comment, and the server freed before the notifier. Every wait is
 * bounded.
 */
#include "testutil.h"

#include "notify.h"
#include "util.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define WAIT_LIMIT_S 10   /* a wait that takes longer fails the test */
#define SINK_MAX 64

static struct event_base *base;

/* ---- running the loop ---- */

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	*(int *)arg = 1;
}

/* Runs the loop until done(arg) or WAIT_LIMIT_S; returns 1 if done() came. */
static int run_until(int (*done)(void *), void *arg)
{
	struct timeval tv = { WAIT_LIMIT_S, 0 };
	int expired = 0;
	struct event *deadline = evtimer_new(base, on_deadline, &expired);

	evtimer_add(deadline, &tv);
	while (!done(arg) && !expired)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(deadline);
	return done(arg);
}

/* Runs the loop for ms milliseconds. */
static void run_for(long ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	int expired = 0;
	struct event *t = evtimer_new(base, on_deadline, &expired);

	evtimer_add(t, &tv);
	while (!expired)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(t);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	(*(int *)arg)++;
}

/* ---- the sink ---- */

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

static void sink_ok(struct sink *s, struct evhttp_request *req)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);

	if (s->n_got < SINK_MAX) {
		snprintf(s->path[s->n_got], sizeof s->path[0], "%s", evhttp_request_get_uri(req));
		s->body[s->n_got] = xmalloc(len + 1);
		evbuffer_copyout(in, s->body[s->n_got], len);
		s->body[s->n_got][len] = '\0';
	}
	s->n_got++;
	evhttp_send_reply(req, 200, "OK", NULL);
}

static void sink_cb(struct evhttp_request *req, void *arg)
{
	struct sink *s = arg;
	const char *ct = evhttp_find_header(evhttp_request_get_input_headers(req),
	    "Content-Type");

	s->n_reqs++;
	snprintf(s->ctype, sizeof s->ctype, "%s", ct != NULL ? ct : "");
	if (s->hang && s->n_held < SINK_MAX)
		s->held[s->n_held++] = req;
	else if (s->n_reqs <= s->fail_k)
		evhttp_send_reply(req, s->fail_status, "Nope", NULL);
	else
		sink_ok(s, req);
}

/* An evhttp server on 127.0.0.1 and a port the kernel chose; returns it in *port. */
static struct evhttp *http_listen(void (*cb)(struct evhttp_request *, void *), void *arg,
    int *port)
{
	struct evhttp *http = evhttp_new(base);
	struct evhttp_bound_socket *bs;
	struct sockaddr_in sa;
	socklen_t sl = sizeof sa;

	assert_non_null(http);
	bs = evhttp_bind_socket_with_handle(http, "127.0.0.1", 0);
	assert_non_null(bs);
	assert_int_equal(getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sa,
	    &sl), 0);
	*port = ntohs(sa.sin_port);
	evhttp_set_gencb(http, cb, arg);
	return http;
}

static void sink_start(struct sink *s)
{
	memset(s, 0, sizeof *s);
	s->http = http_listen(sink_cb, s, &s->port);
}

/* Answers the held requests 200 (recorded) and stops holding. */
static void sink_release(struct sink *s)
{
	s->hang = 0;
	for (int i = 0; i < s->n_held; i++)
		sink_ok(s, s->held[i]);
	s->n_held = 0;
}

/* Held requests are answered first: one whose client hung up is ours to free. */
static void sink_stop(struct sink *s)
{
	sink_release(s);
	evhttp_free(s->http);
	for (int i = 0; i < s->n_got && i < SINK_MAX; i++)
		free(s->body[i]);
}

struct want {
	struct sink *s;
	int n;
};

static int sink_got(void *arg)
{
	struct want *w = arg;

	return w->s->n_got >= w->n;
}

static int sink_reqs(void *arg)
{
	struct want *w = arg;

	return w->s->n_reqs >= w->n;
}

/* ---- stats ---- */

static long long hook_stat(struct notify *n, size_t i, const char *key)
{
	json_t *j = notify_stats_json(n);
	json_t *v = json_object_get(json_array_get(json_object_get(j, "hooks"), i), key);
	long long r = json_is_boolean(v) ? json_is_true(v) : json_integer_value(v);

	json_decref(j);
	return r;
}

static long long sse_stat(struct notify *n, const char *key)
{
	json_t *j = notify_stats_json(n);
	long long r = json_integer_value(json_object_get(json_object_get(j, "sse"), key));

	json_decref(j);
	return r;
}

struct hook_want {
	struct notify *n;
	size_t hook;
	const char *key;
	long long v;
};

static int hook_stat_is(void *arg)
{
	struct hook_want *w = arg;

	return hook_stat(w->n, w->hook, w->key) >= w->v;
}

/* Waits until hook i of n counts key >= v (the sink answers before curl reads it). */
static void wait_stat(struct notify *n, size_t i, const char *key, long long v)
{
	struct hook_want hw = { n, i, key, v };

	assert_true(run_until(hook_stat_is, &hw));
}

static char *url(int port, const char *path)
{
	return xasprintf("http://127.0.0.1:%d%s", port, path);
}

/* ---- webhooks ---- */

static void test_webhook_delivered(void **state)
{
	struct sink s;
	struct notify *n;
	struct notify_hook h = { 0 };
	struct want w = { &s, 1 };
	json_t *data = json_pack("{ss}", "model", "m1"), *j;
	const char *at;

	sink_start(&s);
	h.url = url(s.port, "/hook");
	n = notify_new(base, &h, 1);
	assert_non_null(n);
	notify_emit(n, "model.loaded", data);
	assert_int_equal(data->refcount, 1);   /* borrowed: left as it was */
	json_decref(data);
	assert_true(run_until(sink_got, &w));
	assert_string_equal(s.path[0], "/hook");
	assert_string_equal(s.ctype, "application/json");
	j = json_loads(s.body[0], 0, NULL);
	assert_non_null(j);
	assert_int_equal(json_integer_value(json_object_get(j, "id")), 1);
	assert_string_equal(json_string_value(json_object_get(j, "type")), "model.loaded");
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "data"),
	    "model")), "m1");
	at = json_string_value(json_object_get(j, "at"));
	assert_non_null(at);
	/* 2025-01-02T03:04:05.678Z */
	assert_int_equal(strlen(at), 24);
	assert_true(at[4] == '-' && at[10] == 'T' && at[19] == '.' && at[23] == 'Z');
	json_decref(j);

	/* no data: {} */
	notify_emit(n, "scan.finished", NULL);
	w.n = 2;
	assert_true(run_until(sink_got, &w));
	j = json_loads(s.body[1], 0, NULL);
	assert_int_equal(json_integer_value(json_object_get(j, "id")), 2);
	assert_true(json_is_object(json_object_get(j, "data")));
	assert_int_equal(json_object_size(json_object_get(j, "data")), 0);
	json_decref(j);
	wait_stat(n, 0, "sent", 2);
	assert_int_equal(hook_stat(n, 0, "sent"), 2);
	assert_int_equal(hook_stat(n, 0, "failed"), 0);
	assert_int_equal(s.n_reqs, 2);
	notify_free(n);
	free((char *)h.url);
	sink_stop(&s);
}

static void test_filters(void **state)
{
	static const char *const models[] = { "model.loaded", "model.unloaded" };
	static const char *const vram[] = { "vram.pressure" };
	static const char *const bad[] = { "model.exploded" };
	struct sink s;
	struct notify *n;
	struct notify_hook h[3] = { { 0 }, { 0 }, { 0 } };
	struct want w = { &s, 7 };
	int n_all = 0, n_models = 0, n_vram = 0;
	json_t *j;
	const char *t;

	sink_start(&s);
	h[0].url = url(s.port, "/all");
	h[1].url = url(s.port, "/models");
	h[1].events = models;
	h[1].n_events = 2;
	h[2].url = url(s.port, "/vram");
	h[2].events = vram;
	h[2].n_events = 1;
	n = notify_new(base, h, 3);
	assert_non_null(n);
	notify_emit(n, "model.loaded", NULL);
	notify_emit(n, "vram.pressure", NULL);
	notify_emit(n, "backend.down", NULL);
	notify_emit(n, "model.unloaded", NULL);
	assert_true(run_until(sink_got, &w));
	run_for(100);   /* nothing more arrives */
	assert_int_equal(s.n_got, 7);
	for (int i = 0; i < s.n_got; i++) {
		j = json_loads(s.body[i], 0, NULL);
		t = json_string_value(json_object_get(j, "type"));
		if (strcmp(s.path[i], "/all") == 0)
			n_all++;
		else if (strcmp(s.path[i], "/models") == 0) {
			assert_true(strncmp(t, "model.", 6) == 0);
			/* in order, one at a time */
			assert_string_equal(t, n_models == 0 ? "model.loaded" : "model.unloaded");
			n_models++;
		} else {
			assert_string_equal(s.path[i], "/vram");
			assert_string_equal(t, "vram.pressure");
			n_vram++;
		}
		json_decref(j);
	}
	assert_int_equal(n_all, 4);
	assert_int_equal(n_models, 2);
	assert_int_equal(n_vram, 1);
	notify_free(n);

	/* bad hooks: unknown type, not http, out of range */
	h[2].events = bad;
	assert_null(notify_new(base, h, 3));
	h[2].events = vram;
	free((char *)h[2].url);
	h[2].url = "https://127.0.0.1/x";
	assert_null(notify_new(base, &h[2], 1));
	h[2].url = "ftp://127.0.0.1/x";
	assert_null(notify_new(base, &h[2], 1));
	h[2].url = "http://";
	assert_null(notify_new(base, &h[2], 1));
	h[2].url = "http://127.0.0.1/a b";
	assert_null(notify_new(base, &h[2], 1));
	h[0].max_retries = 11;
	assert_null(notify_new(base, h, 1));
	free((char *)h[0].url);
	free((char *)h[1].url);
	sink_stop(&s);
}

/* fail_k answers of status, then 200: delivered once after fail_k retries. */
static void retry_case(int status)
{
	struct sink s;
	struct notify *n;
	struct notify_hook h = { 0 };
	struct want w = { &s, 1 };

	sink_start(&s);
	s.fail_k = 2;
	s.fail_status = status;
	h.url = url(s.port, "/r");
	h.retry_base_ms = 10;
	n = notify_new(base, &h, 1);
	assert_non_null(n);
	notify_emit(n, "model.failed", NULL);
	assert_true(run_until(sink_got, &w));
	assert_int_equal(s.n_reqs, 3);
	assert_int_equal(s.n_got, 1);
	wait_stat(n, 0, "sent", 1);
	assert_int_equal(hook_stat(n, 0, "sent"), 1);
	assert_int_equal(hook_stat(n, 0, "retries"), 2);
	assert_int_equal(hook_stat(n, 0, "failed"), 0);
	assert_int_equal(hook_stat(n, 0, "in_flight"), 0);
	notify_free(n);
	free((char *)h.url);
	sink_stop(&s);
}

static void test_retry_500(void **state)
{
	retry_case(500);
}

static void test_retry_429(void **state)
{
	retry_case(429);
}

static void test_400_no_retry(void **state)
{
	struct sink s;
	struct notify *n;
	struct notify_hook h = { 0 };
	struct hook_want hw;
	json_t *j;

	sink_start(&s);
	s.fail_k = 100;
	s.fail_status = 400;
	h.url = url(s.port, "/bad");
	h.retry_base_ms = 10;
	n = notify_new(base, &h, 1);
	hw = (struct hook_want){ n, 0, "failed", 1 };
	notify_emit(n, "backend.down", NULL);
	assert_true(run_until(hook_stat_is, &hw));
	run_for(100);   /* no retry comes */
	assert_int_equal(s.n_reqs, 1);
	assert_int_equal(hook_stat(n, 0, "sent"), 0);
	assert_int_equal(hook_stat(n, 0, "retries"), 0);
	j = notify_stats_json(n);
	assert_string_equal(json_string_value(json_object_get(json_array_get(
	    json_object_get(j, "hooks"), 0), "last_error")), "HTTP 400");
	json_decref(j);
	notify_free(n);
	free((char *)h.url);
	sink_stop(&s);
}

static void test_dead_port(void **state)
{
	struct notify *n;
	struct notify_hook h = { 0 };
	struct hook_want hw;
	struct timeval tv = { 0, 10000 };
	int ticks = 0, at_emit;
	struct event *ticker = event_new(base, -1, EV_PERSIST, on_tick, &ticks);

	event_add(ticker, &tv);
	h.url = url(tu_free_port(), "/nobody");
	h.max_retries = 2;
	h.retry_base_ms = 30;
	n = notify_new(base, &h, 1);
	hw = (struct hook_want){ n, 0, "failed", 2 };
	at_emit = ticks;
	notify_emit(n, "backend.down", NULL);
	notify_emit(n, "backend.up", NULL);
	assert_true(run_until(hook_stat_is, &hw));
	assert_int_equal(hook_stat(n, 0, "retries"), 4);   /* 2 events, 2 retries each */
	assert_int_equal(hook_stat(n, 0, "sent"), 0);
	/* two rounds of 30 + 60 ms backoff at least: the ticker kept firing */
	assert_true(ticks - at_emit >= 10);
	notify_free(n);
	event_free(ticker);
	free((char *)h.url);
}

static void test_hung_server(void **state)
{
	struct sink s;
	struct notify *n;
	struct notify_hook h = { 0 };
	struct hook_want hw;
	struct timeval tv = { 0, 10000 };
	int ticks = 0;
	struct event *ticker = event_new(base, -1, EV_PERSIST, on_tick, &ticks);
	json_t *j;

	sink_start(&s);
	s.hang = 1;
	h.url = url(s.port, "/hang");
	h.timeout_ms = 200;
	h.max_retries = NOTIFY_NO_RETRY;
	n = notify_new(base, &h, 1);
	event_add(ticker, &tv);
	hw = (struct hook_want){ n, 0, "failed", 1 };
	notify_emit(n, "vram.pressure", NULL);
	assert_true(run_until(hook_stat_is, &hw));
	assert_int_equal(s.n_reqs, 1);
	assert_true(ticks >= 10);
	j = notify_stats_json(n);
	assert_non_null(strstr(json_string_value(json_object_get(json_array_get(
	    json_object_get(j, "hooks"), 0), "last_error")), "timed out"));
	json_decref(j);
	notify_free(n);
	event_free(ticker);
	free((char *)h.url);
	sink_stop(&s);
}

static void test_queue_overflow(void **state)
{
	struct sink s;
	struct notify *n;
	struct notify_hook h = { 0 };
	struct want w = { &s, 1 };
	static const long long want_ids[] = { 1, 7, 8, 9, 10 };
	json_t *j;

	sink_start(&s);
	s.hang = 1;
	h.url = url(s.port, "/slow");
	h.max_queue = 4;
	h.timeout_ms = 10000;
	n = notify_new(base, &h, 1);
	for (int i = 0; i < 10; i++)
		notify_emit(n, "vram.pressure", NULL);
	/* 1 in flight, 2..6 dropped, 7..10 waiting */
	assert_int_equal(hook_stat(n, 0, "dropped"), 5);
	assert_int_equal(hook_stat(n, 0, "queued"), 4);
	assert_int_equal(hook_stat(n, 0, "in_flight"), 1);
	assert_true(run_until(sink_reqs, &w));
	sink_release(&s);
	w.n = 5;
	assert_true(run_until(sink_got, &w));
	for (int i = 0; i < 5; i++) {
		j = json_loads(s.body[i], 0, NULL);
		assert_int_equal(json_integer_value(json_object_get(j, "id")), want_ids[i]);
		json_decref(j);
	}
	wait_stat(n, 0, "sent", 5);
	assert_int_equal(hook_stat(n, 0, "sent"), 5);
	assert_int_equal(hook_stat(n, 0, "queued"), 0);
	notify_free(n);
	free((char *)h.url);
	sink_stop(&s);
}

/* notify_free with one transfer in flight, one retry pending, events queued. */
static void test_free_busy(void **state)
{
	struct sink s;
	struct notify *n;
	struct notify_hook h[2] = { { 0 }, { 0 } };
	struct want w = { &s, 1 };
	struct hook_want hw;
	json_t *j;

	sink_start(&s);
	s.hang = 1;
	h[0].url = url(s.port, "/hang");
	h[1].url = url(tu_free_port(), "/dead");
	h[1].retry_base_ms = 60000;
	n = notify_new(base, h, 2);
	notify_emit(n, "model.loaded", NULL);
	notify_emit(n, "model.loaded", NULL);
	notify_emit(n, "bad type", NULL);     /* ignored */
	notify_emit(n, "Model.Loaded", NULL); /* ignored */
	notify_emit(n, NULL, NULL);           /* ignored */
	hw = (struct hook_want){ n, 1, "retries", 1 };
	assert_true(run_until(sink_reqs, &w));
	assert_true(run_until(hook_stat_is, &hw));
	j = notify_stats_json(n);
	assert_int_equal(json_integer_value(json_object_get(j, "events")), 2);
	json_decref(j);
	notify_free(n);
	run_for(50);
	free((char *)h[0].url);
	free((char *)h[1].url);
	sink_stop(&s);
}

/* ---- SSE ---- */

struct server {
	struct evhttp *http;
	int port;
	struct notify *n;
};

static void server_cb(struct evhttp_request *req, void *arg)
{
	struct server *sv = arg;

	if (strcmp(evhttp_request_get_uri(req), "/events") == 0)
		notify_sse_attach(sv->n, req);
	else
		evhttp_send_error(req, 404, NULL);
}

static void server_start(struct server *sv)
{
	sv->n = notify_new(base, NULL, 0);
	assert_non_null(sv->n);
	sv->http = http_listen(server_cb, sv, &sv->port);
}

static void server_stop(struct server *sv)
{
	notify_free(sv->n);
	run_for(20);   /* let the last bytes go */
	evhttp_free(sv->http);
}

#define CLIENT_MAX (256 * 1024)

struct client {
	int fd;
	struct event *ev;
	char buf[CLIENT_MAX + 1];
	size_t len;
	int eof;
};

static void client_read(evutil_socket_t fd, short what, void *arg)
{
	struct client *c = arg;
	ssize_t r = read(fd, c->buf + c->len, CLIENT_MAX - c->len);

	if (r > 0) {
		c->len += (size_t)r;
		c->buf[c->len] = '\0';
	} else if (r == 0 || (errno != EAGAIN && errno != EINTR) || c->len == CLIENT_MAX) {
		c->eof = 1;
		event_del(c->ev);
	}
}

/* Connects to /events with extra headers (each ending in \r\n); reading=0 leaves the
 * socket unread (a client too slow). */
static struct client *client_open(int port, const char *headers, int reading)
{
	struct client *c = xcalloc(1, sizeof *c);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	char *req;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(c->fd >= 0);
	assert_int_equal(connect(c->fd, (struct sockaddr *)&sa, sizeof sa), 0);
	req = xasprintf("GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream"
	    "\r\n%s\r\n", headers != NULL ? headers : "");
	assert_int_equal(write(c->fd, req, strlen(req)), (ssize_t)strlen(req));
	free(req);
	fcntl(c->fd, F_SETFL, O_NONBLOCK);
	c->ev = event_new(base, c->fd, EV_READ | EV_PERSIST, client_read, c);
	if (reading)
		event_add(c->ev, NULL);
	return c;
}

static void client_close(struct client *c)
{
	event_free(c->ev);
	close(c->fd);
	free(c);
}

struct needle {
	struct client *c;
	const char *s;
};

static int client_has(void *arg)
{
	struct needle *nd = arg;

	return strstr(nd->c->buf, nd->s) != NULL;
}

static int client_eof(void *arg)
{
	return ((struct client *)arg)->eof;
}

struct subs_want {
	struct notify *n;
	long long v;
};

static int subs_are(void *arg)
{
	struct subs_want *w = arg;

	return sse_stat(w->n, "subscribers") == w->v;
}

/* Checks that c got event id of type, after *pos; moves *pos past it. */
static void check_event(struct client *c, long long id, const char *type, char **pos)
{
	char *head = xasprintf("id: %lld\nevent: %s\ndata: ", id, type);
	char *p = strstr(*pos, head), *end;
	json_t *j;

	assert_non_null(p);
	p += strlen(head);
	end = strstr(p, "\n\n");
	assert_non_null(end);
	j = json_loadb(p, (size_t)(end - p), 0, NULL);
	assert_non_null(j);
	assert_int_equal(json_integer_value(json_object_get(j, "id")), id);
	assert_string_equal(json_string_value(json_object_get(j, "type")), type);
	json_decref(j);
	*pos = end + 2;
	free(head);
}

static void test_sse_stream(void **state)
{
	struct server sv;
	struct client *c;
	struct subs_want sw;
	struct needle nd;
	json_t *d = json_pack("{ss}", "msg", "two\nlines");
	char *pos;

	server_start(&sv);
	c = client_open(sv.port, NULL, 1);
	sw = (struct subs_want){ sv.n, 1 };
	assert_true(run_until(subs_are, &sw));
	notify_emit(sv.n, "model.loaded", NULL);
	notify_emit(sv.n, "vram.pressure", d);
	notify_emit(sv.n, "backend.up", NULL);
	json_decref(d);
	nd = (struct needle){ c, "id: 3\n" };
	assert_true(run_until(client_has, &nd));
	nd.s = "\n\n";
	assert_true(run_until(client_has, &nd));
	assert_true(strncmp(c->buf, "HTTP/1.1 200", 12) == 0);
	assert_non_null(strstr(c->buf, "Content-Type: text/event-stream\r\n"));
	assert_non_null(strstr(c->buf, "Cache-Control: no-cache\r\n"));
	pos = strstr(c->buf, "\r\n\r\n");
	check_event(c, 1, "model.loaded", &pos);
	check_event(c, 2, "vram.pressure", &pos);   /* its newline stays escaped */
	check_event(c, 3, "backend.up", &pos);
	client_close(c);
	server_stop(&sv);
}

static void test_sse_replay(void **state)
{
	struct server sv;
	struct client *c, *c0, *cbad;
	struct subs_want sw;
	struct needle nd;
	char *pos;

	server_start(&sv);
	notify_emit(sv.n, "model.loaded", NULL);
	notify_emit(sv.n, "model.unloaded", NULL);
	notify_emit(sv.n, "scan.finished", NULL);
	c = client_open(sv.port, "Last-Event-ID: 2\r\n", 1);
	c0 = client_open(sv.port, "Last-Event-ID: 0\r\n", 1);
	cbad = client_open(sv.port, "Last-Event-ID: banana\r\n", 1);
	sw = (struct subs_want){ sv.n, 3 };
	assert_true(run_until(subs_are, &sw));
	notify_emit(sv.n, "backend.down", NULL);
	nd = (struct needle){ c, "id: 4\n" };
	assert_true(run_until(client_has, &nd));
	nd.c = c0;
	assert_true(run_until(client_has, &nd));
	nd.c = cbad;
	assert_true(run_until(client_has, &nd));
	run_for(20);

	pos = strstr(c->buf, "\r\n\r\n");
	assert_null(strstr(pos, "id: 1\n"));
	assert_null(strstr(pos, "id: 2\n"));
	check_event(c, 3, "scan.finished", &pos);
	check_event(c, 4, "backend.down", &pos);

	pos = strstr(c0->buf, "\r\n\r\n");
	check_event(c0, 1, "model.loaded", &pos);
	check_event(c0, 2, "model.unloaded", &pos);
	check_event(c0, 3, "scan.finished", &pos);
	check_event(c0, 4, "backend.down", &pos);

	assert_null(strstr(cbad->buf, "id: 3\n"));
	pos = strstr(cbad->buf, "\r\n\r\n");
	check_event(cbad, 4, "backend.down", &pos);
	client_close(c);
	client_close(c0);
	client_close(cbad);
	server_stop(&sv);
}

static void test_sse_keepalive(void **state)
{
	struct server sv;
	struct client *c;
	struct needle nd;

	server_start(&sv);
	notify_sse_set_limits(sv.n, 0, 0, 50);
	c = client_open(sv.port, NULL, 1);
	nd = (struct needle){ c, ":keepalive\n\n" };
	assert_true(run_until(client_has, &nd));
	client_close(c);
	server_stop(&sv);
}

static void test_sse_disconnect(void **state)
{
	struct server sv;
	struct client *a, *b;
	struct subs_want sw;
	struct needle nd;

	server_start(&sv);
	notify_sse_set_limits(sv.n, 0, 0, 20);   /* keepalives keep writing to both */
	a = client_open(sv.port, NULL, 1);
	b = client_open(sv.port, NULL, 1);
	sw = (struct subs_want){ sv.n, 2 };
	assert_true(run_until(subs_are, &sw));
	client_close(a);
	sw.v = 1;
	assert_true(run_until(subs_are, &sw));
	run_for(60);   /* reaped, keepalives go on */
	notify_emit(sv.n, "model.loaded", NULL);
	nd = (struct needle){ b, "id: 1\n" };
	assert_true(run_until(client_has, &nd));
	/* freeing the notifier ends b's stream: the last chunk, then the connection closes */
	notify_free(sv.n);
	sv.n = NULL;
	assert_true(run_until(client_eof, b));
	assert_non_null(strstr(b->buf, "\r\n0\r\n\r\n"));
	client_close(b);
	evhttp_free(sv.http);
}

static void test_sse_cap(void **state)
{
	struct server sv;
	struct client *a, *b;
	struct subs_want sw;
	struct needle nd;

	server_start(&sv);
	notify_sse_set_limits(sv.n, 1, 0, 0);
	a = client_open(sv.port, NULL, 1);
	sw = (struct subs_want){ sv.n, 1 };
	assert_true(run_until(subs_are, &sw));
	b = client_open(sv.port, NULL, 1);
	nd = (struct needle){ b, "}}" };
	assert_true(run_until(client_has, &nd));
	assert_true(strncmp(b->buf, "HTTP/1.1 503", 12) == 0);
	assert_non_null(strstr(b->buf, "too_many_subscribers"));
	assert_non_null(strstr(b->buf, "Retry-After: 5"));
	assert_int_equal(sse_stat(sv.n, "subscribers"), 1);
	client_close(a);
	client_close(b);
	server_stop(&sv);
}

static void test_sse_slow_client(void **state)
{
	struct server sv;
	struct client *c;
	struct subs_want sw;
	json_t *d = json_object();
	char *big = xmalloc(4097);

	memset(big, 'x', 4096);
	big[4096] = '\0';
	json_object_set_new(d, "pad", json_string(big));
	server_start(&sv);
	notify_sse_set_limits(sv.n, 0, 16384, 0);
	c = client_open(sv.port, NULL, 1);
	sw = (struct subs_want){ sv.n, 1 };
	assert_true(run_until(subs_are, &sw));
	/* the loop does not run in between: everything waits in the connection */
	for (int i = 0; i < 10; i++)
		notify_emit(sv.n, "vram.pressure", d);
	assert_int_equal(sse_stat(sv.n, "subscribers"), 0);
	assert_int_equal(sse_stat(sv.n, "dropped_slow"), 1);
	assert_true(run_until(client_eof, c));
	assert_non_null(strstr(c->buf, ": dropped: this client reads too slowly\n\n"));
	assert_non_null(strstr(c->buf, "id: 3\n"));
	assert_null(strstr(c->buf, "id: 4\n"));
	notify_emit(sv.n, "vram.pressure", d);   /* nobody left to write to */
	json_decref(d);
	free(big);
	client_close(c);
	server_stop(&sv);
}

/* The HTTP server goes first, with a client attached: libevent frees the request. */
static void test_sse_server_freed_first(void **state)
{
	struct server sv;
	struct client *c;
	struct subs_want sw;

	server_start(&sv);
	c = client_open(sv.port, NULL, 1);
	sw = (struct subs_want){ sv.n, 1 };
	assert_true(run_until(subs_are, &sw));
	evhttp_free(sv.http);
	assert_int_equal(sse_stat(sv.n, "subscribers"), 0);
	notify_emit(sv.n, "model.loaded", NULL);
	run_for(20);
	notify_free(sv.n);
	client_close(c);
}

static int setup(void **state)
{
	base = event_base_new();
	return base != NULL ? 0 : -1;
}

static int teardown(void **state)
{
	event_base_free(base);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_webhook_delivered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_filters, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retry_500, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retry_429, setup, teardown),
		cmocka_unit_test_setup_teardown(test_400_no_retry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dead_port, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hung_server, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_overflow, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_busy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sse_stream, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sse_replay, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sse_keepalive, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sse_disconnect, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sse_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sse_slow_client, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sse_server_freed_first, setup, teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
