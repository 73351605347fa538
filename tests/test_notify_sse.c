/*
 * test_notify_sse: the /events SSE streams on a real libevent loop, through raw socket
 * clients to an evhttp server that calls notify_sse_attach (tests/notify_sink.c has the
 * loop helpers). Covers: events in order with id/event/data lines, Last-Event-ID replay,
 * keepalive comments, a client that hangs up, the subscriber cap (503), a slow client
 * dropped with a last comment, and the server freed before the notifier. Every wait is
 * bounded. The webhooks are in test_notify.c.
 */
#include "testutil.h"

#include "notify.h"
#include "notify_sink.h"
#include "util.h"

#include <event2/event.h>
#include <event2/http.h>
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

/* ---- stats ---- */

static long long sse_stat(struct notify *n, const char *key)
{
	json_t *j = notify_stats_json(n);
	long long r = json_integer_value(json_object_get(json_object_get(j, "sse"), key));

	json_decref(j);
	return r;
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

int main(void)
{
	const struct CMUnitTest tests[] = {
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
