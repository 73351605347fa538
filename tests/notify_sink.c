/*
 * notify_sink: the loop, the evhttp server and the webhook sink shared by test_notify
 * and test_notify_sse (see notify_sink.h).
 */
#include "testutil.h"

#include "notify_sink.h"
#include "util.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct event_base *base;

/* ---- running the loop ---- */

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	*(int *)arg = 1;
}

/* Runs the loop until done(arg) or WAIT_LIMIT_S; returns 1 if done() came. */
int run_until(int (*done)(void *), void *arg)
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
void run_for(long ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	int expired = 0;
	struct event *t = evtimer_new(base, on_deadline, &expired);

	evtimer_add(t, &tv);
	while (!expired)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(t);
}

/* ---- the sink ---- */

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
struct evhttp *http_listen(void (*cb)(struct evhttp_request *, void *), void *arg,
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

void sink_start(struct sink *s)
{
	memset(s, 0, sizeof *s);
	s->http = http_listen(sink_cb, s, &s->port);
}

/* Answers the held requests 200 (recorded) and stops holding. */
void sink_release(struct sink *s)
{
	s->hang = 0;
	for (int i = 0; i < s->n_held; i++)
		sink_ok(s, s->held[i]);
	s->n_held = 0;
}

/* Held requests are answered first: one whose client hung up is ours to free. */
void sink_stop(struct sink *s)
{
	sink_release(s);
	evhttp_free(s->http);
	for (int i = 0; i < s->n_got && i < SINK_MAX; i++)
		free(s->body[i]);
}

int sink_got(void *arg)
{
	struct want *w = arg;

	return w->s->n_got >= w->n;
}

int sink_reqs(void *arg)
{
	struct want *w = arg;

	return w->s->n_reqs >= w->n;
}

/* ---- per test ---- */

int setup(void **state)
{
	base = event_base_new();
	return base != NULL ? 0 : -1;
}

int teardown(void **state)
{
	event_base_free(base);
	return 0;
}
