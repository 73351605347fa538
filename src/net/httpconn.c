/*
 * httpconn: the connection layer under evhttp (see httpconn.h). libevent 2.1 has no
 * per-connection hooks on the server side (no newreqcb, no errorcb, no connection
 * cap: those are 2.2), so this file builds them from what 2.1 does offer:
 *
 * - evhttp_set_bevcb: evhttp asks us for each accepted connection's bufferevent. That
 *   is the accept hook (counting, the cap); the connection (evhttp_connection) evhttp
 *   builds around it is the bufferevent's callback argument, read with
 *   bufferevent_getcb on the next loop turn, and its close callback becomes ours.
 * - The request evhttp associates with a connection is reached through the
 *   connection's request queue. struct evhttp_connection is private, so the queue's
 *   offset is measured at start: a client request made on a client connection sits
 *   first in that queue, and its public TAILQ link (event2/http_struct.h) points back
 *   at the queue head. Measured, not copied from a header: it follows the library
 *   actually loaded; when the measure fails the deadlines and JSON error pages are off
 *   (logged), counting and the cap still work.
 * - On each request: a header callback (head complete: the body deadline starts),
 *   an on-complete callback (the answer is out: the next request is picked up), and
 *   req->cb (public, event2/http_struct.h) wrapped. evhttp calls req->cb both for a
 *   complete request and, with req->uri NULL, after a parse error; the original then
 *   writes an HTML page, the wrapper answers JSON instead (the only place where 2.1
 *   lets a server see its parse errors before the answer is written).
 * - The head deadline starts at the request's first byte (an input-buffer callback),
 *   so a keep-alive connection idle between requests stays under evhttp's own idle
 *   timeout. Deadlines close the connection from their own timer event.
 * - The listener's error callback replaces libevent's, which logs and retries at once:
 *   out of descriptors, accept() fails on every loop turn (a busy loop with a log line
 *   each time). Here the listener pauses PAUSE_MS, one line per episode, and a reserve
 *   descriptor is given up meanwhile so the daemon itself can still open a file.
 */
#include "httpconn.h"
#include "util.h"

#include <sys/queue.h>
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/http_struct.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PAUSE_MS 250               /* the listener rests this long out of descriptors */
#define LINGER_S 5                 /* input read and dropped this long after an error */
#define LINGER_MAX (256u << 20)    /* ... or this many bytes */
#define CAP_LOG_S 60               /* "at max_connections" logged at most this often */
#define KNOWN_METHODS (EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT | \
	EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT | \
	EVHTTP_REQ_PATCH)

enum hc_phase { PH_WAIT, PH_HEAD, PH_BODY, PH_BUSY };

struct hc_conn {
	struct httpconn *hc;
	struct bufferevent *bev;          /* ours (evhttp_set_bevcb); evhttp frees it */
	struct evhttp_connection *evcon;  /* NULL until the hook has run */
	struct evbuffer_cb_entry *in_cb;
	struct event *hook_ev;            /* picks up a newly associated request */
	struct event *deadline_ev;
	enum hc_phase phase;
	int linger;                       /* answered a parse error: linger on close */
	int expect_failed;                /* an Expect header other than 100-continue */
	void (*close_cb)(struct evhttp_connection *, void *);
	void *close_arg;
	struct hc_conn *prev, *next;
};

struct hc_linger {
	int fd;
	size_t n;
	struct event *rd, *to;
	struct httpconn *hc;
	struct hc_linger *next;
};

struct httpconn {
	struct event_base *base;
	struct evhttp *http;
	struct evconnlistener *lev;
	struct httpconn_opts o;
	httpconn_error_fn err;
	size_t reqq_off;                  /* the request queue in evhttp_connection; 0: unknown */
	void (*orig_cb)(struct evhttp_request *, void *);
	struct hc_conn *conns, *dead;     /* open; closed, freed on the next turn */
	struct hc_linger *lingers, *dead_lingers;
	unsigned n_conns;
	int reserve_fd;                   /* /dev/null, given up while out of descriptors */
	int paused_fd, episode, paused_cap;
	time_t episode_t0, cap_logged;
	unsigned long episode_errors;
	struct event *resume_ev, *reap_ev;
};

/* The process's layer: the listener's error callback and req->cb get no argument of
 * ours, and httpconn_on_close is called by modules that do not hold it. */
static struct httpconn *hc_one;

static void on_request(struct evhttp_request *req, void *arg);

static struct hc_conn *conn_find(struct httpconn *hc, struct evhttp_connection *evcon)
{
	for (struct hc_conn *c = hc ? hc->conns : NULL; c != NULL; c = c->next)
		if (c->evcon == evcon)
			return c;
	return NULL;
}

/* The request evhttp has associated with evcon (borrowed), or NULL. */
static struct evhttp_request *current_req(const struct httpconn *hc,
    struct evhttp_connection *evcon)
{
	struct evhttp_request *r = NULL;
	if (hc->reqq_off != 0)
		memcpy(&r, (const char *)evcon + hc->reqq_off, sizeof r);
	return r;
}

static void arm(struct event *e, unsigned s)
{
	struct timeval tv = { (time_t)s, 0 };
	event_del(e);
	if (s > 0)
		event_add(e, &tv);
}

/* ---- the listener: cap and pauses ---- */

static void listener_update(struct httpconn *hc)
{
	if (hc->lev == NULL)
		return;
	int cap = hc->o.max_connections > 0 && hc->n_conns >= hc->o.max_connections;
	if (cap && !hc->paused_cap && time(NULL) - hc->cap_logged >= CAP_LOG_S) {
		log_info("%u client connections open (max_connections): new ones wait",
		    hc->n_conns);
		hc->cap_logged = time(NULL);
	}
	hc->paused_cap = cap;
	if (cap || hc->paused_fd)
		evconnlistener_disable(hc->lev);
	else
		evconnlistener_enable(hc->lev);
}

/* accept() failed with something other than EAGAIN/EINTR/ECONNABORTED. */
static void on_accept_error(struct evconnlistener *lev, void *arg)
{
	struct httpconn *hc = hc_one;
	int e = errno;
	(void)arg;
	if (hc == NULL)
		return;
	hc->episode_errors++;
	if (!hc->episode) {
		log_warnx("accept: %s (%u client connections open): new connections wait in the "
		    "backlog until descriptors are free (said once until then)", strerror(e),
		    hc->n_conns);
		hc->episode = 1;
		hc->episode_t0 = time(NULL);
		hc->episode_errors = 1;
	}
	if (hc->reserve_fd >= 0) {
		close(hc->reserve_fd);
		hc->reserve_fd = -1;
	}
	hc->paused_fd = 1;
	evconnlistener_disable(lev);
	struct timeval tv = { 0, PAUSE_MS * 1000 };
	event_add(hc->resume_ev, &tv);
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
	struct httpconn *hc = arg;
	(void)fd, (void)what;
	if (hc->reserve_fd < 0)
		hc->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (hc->reserve_fd < 0) { /* still none free: the listener rests on */
		struct timeval tv = { 0, PAUSE_MS * 1000 };
		event_add(hc->resume_ev, &tv);
		return;
	}
	hc->paused_fd = 0;
	listener_update(hc);
}

/* ---- lingering close ---- */

static void linger_end(struct hc_linger *l)
{
	struct httpconn *hc = l->hc;
	event_del(l->rd);
	event_del(l->to);
	close(l->fd);
	l->fd = -1;
	struct hc_linger **pp = &hc->lingers;
	while (*pp != l)
		pp = &(*pp)->next;
	*pp = l->next;
	l->next = hc->dead_lingers;
	hc->dead_lingers = l;
	event_active(hc->reap_ev, EV_TIMEOUT, 0);
}

static void on_linger_read(evutil_socket_t fd, short what, void *arg)
{
	struct hc_linger *l = arg;
	char buf[16384];
	if (what & EV_TIMEOUT) {
		linger_end(l);
		return;
	}
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		if (n <= 0 || (l->n += (size_t)n) > LINGER_MAX) {
			linger_end(l);
			return;
		}
	}
}

/* The answer went out on fd (evhttp closes it next): keep a duplicate that reads and
 * drops what the client still sends, so that closing does not reset the connection
 * before the client has read the answer (as nginx's lingering_close). */
static void linger_start(struct httpconn *hc, int fd)
{
	int dfd = fd >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1;
	if (dfd < 0)
		return;
	shutdown(dfd, SHUT_WR);
	struct hc_linger *l = xcalloc(1, sizeof *l);
	l->fd = dfd;
	l->hc = hc;
	l->rd = event_new(hc->base, dfd, EV_READ | EV_PERSIST, on_linger_read, l);
	l->to = event_new(hc->base, -1, 0, on_linger_read, l);
	l->next = hc->lingers;
	hc->lingers = l;
	event_add(l->rd, NULL);
	arm(l->to, LINGER_S);
}

/* ---- connections ---- */

/* c is closed: unlinked now, freed on the next turn (we may be inside its events). */
static void conn_gone(struct hc_conn *c)
{
	struct httpconn *hc = c->hc;
	event_del(c->hook_ev);
	event_del(c->deadline_ev);
	if (c->in_cb != NULL)
		evbuffer_remove_cb_entry(bufferevent_get_input(c->bev), c->in_cb);
	c->in_cb = NULL;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		hc->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->next = hc->dead;
	hc->dead = c;
	hc->n_conns--;
	event_active(hc->reap_ev, EV_TIMEOUT, 0);
	listener_update(hc);
}

static void on_reap(evutil_socket_t fd, short what, void *arg)
{
	struct httpconn *hc = arg;
	(void)fd, (void)what;
	while (hc->dead != NULL) {
		struct hc_conn *c = hc->dead;
		hc->dead = c->next;
		event_free(c->hook_ev);
		event_free(c->deadline_ev);
		free(c);
	}
	while (hc->dead_lingers != NULL) {
		struct hc_linger *l = hc->dead_lingers;
		hc->dead_lingers = l->next;
		event_free(l->rd);
		event_free(l->to);
		free(l);
	}
}

/* evhttp's close callback of every tracked connection, inside its teardown. */
static void on_evcon_close(struct evhttp_connection *evcon, void *arg)
{
	struct hc_conn *c = arg;
	if (c->close_cb != NULL)
		c->close_cb(evcon, c->close_arg);
	if (c->linger && hc_one != NULL)
		linger_start(c->hc, bufferevent_getfd(c->bev));
	conn_gone(c);
}

static void start_head(struct hc_conn *c)
{
	c->phase = PH_HEAD;
	arm(c->deadline_ev, c->hc->o.header_timeout_s);
}

/* The input buffer grew: the first byte of a request starts its head deadline. */
static void on_input(struct evbuffer *b, const struct evbuffer_cb_info *info, void *arg)
{
	struct hc_conn *c = arg;
	(void)b;
	if (info->n_added > 0 && c->phase == PH_WAIT && c->evcon != NULL)
		start_head(c);
}

/* The head is complete. An Expect other than 100-continue would get evhttp's HTML 417
 * at once: the header goes, and on_request answers the JSON 417. */
static int on_headers(struct evhttp_request *req, void *arg)
{
	struct hc_conn *c = conn_find(hc_one, evhttp_request_get_connection(req));
	struct evkeyvalq *h = evhttp_request_get_input_headers(req);
	const char *ex = evhttp_find_header(h, "Expect");
	(void)arg;
	if (c != NULL) {
		c->phase = PH_BODY;
		arm(c->deadline_ev, c->hc->o.body_timeout_s);
		if (ex != NULL && strcasecmp(ex, "100-continue") != 0) {
			evhttp_remove_header(h, "Expect");
			c->expect_failed = 1;
		}
	}
	return 0;
}

static void on_complete(struct evhttp_request *req, void *arg)
{
	struct hc_conn *c = arg;
	(void)req;
	c->phase = PH_WAIT;
	event_del(c->deadline_ev);
	/* evhttp associates the next request right after this returns */
	event_active(c->hook_ev, EV_TIMEOUT, 0);
}

/* Every request of a tracked connection, complete or failed (see the top). */
static void on_request(struct evhttp_request *req, void *arg)
{
	struct httpconn *hc = hc_one;
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct hc_conn *c = conn_find(hc, evcon);
	if (c != NULL) {
		c->phase = PH_BUSY;
		event_del(c->deadline_ev);
	}
	int status = req->uri == NULL ? (req->response_code > 0 ? req->response_code : 400) :
	    (req->type & KNOWN_METHODS) == 0 ? 501 : c != NULL && c->expect_failed ? 417 : 0;
	if (status == 0) {
		hc->orig_cb(req, arg);
		return;
	}
	/* what evhttp_handle_request does before its HTML page, then our JSON */
	req->userdone = 0;
	bufferevent_disable(evhttp_connection_get_bufferevent(evcon), EV_READ);
	if (req->major == 0) { /* the request line never parsed */
		req->major = 1;
		req->minor = 1;
	}
	if (c != NULL)
		c->linger = 1;
	hc->err(req, status);
}

/* A request head or body took too long: the connection closes (from this timer, not
 * from inside one of evhttp's callbacks). */
static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct hc_conn *c = arg;
	(void)fd, (void)what;
	if (c->evcon == NULL || (c->phase != PH_HEAD && c->phase != PH_BODY))
		return;
	int head = c->phase == PH_HEAD;
	char *ip = NULL;
	ev_uint16_t port = 0;
	evhttp_connection_get_peer(c->evcon, &ip, &port);
	log_info("closing the connection of %s:%u: its request %s took over %u s", ip ? ip : "?",
	    (unsigned)port, head ? "head" : "body", head ? c->hc->o.header_timeout_s :
	    c->hc->o.body_timeout_s);
	/* best effort, the socket is non-blocking: a client that reads learns why */
	static const char body[] = "{\"error\":{\"code\":\"request_timeout\",\"message\":"
	    "\"the request did not arrive in time\",\"type\":\"invalid_request_error\","
	    "\"param\":null}}\n";
	char msg[512];
	int n = snprintf(msg, sizeof msg, "HTTP/1.1 408 Request Timeout\r\nContent-Type: "
	    "application/json\r\nConnection: close\r\nContent-Length: %zu\r\n\r\n%s",
	    sizeof body - 1, body);
	if (send(bufferevent_getfd(c->bev), msg, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		log_debug("408: %s", strerror(errno));
	evhttp_connection_free(c->evcon); /* on_evcon_close retires c */
}

/* On the loop turn after accept (and after each answer on a kept-alive connection):
 * takes the connection's close callback and hooks its new request. */
static void on_hook(evutil_socket_t fd, short what, void *arg)
{
	struct hc_conn *c = arg;
	struct httpconn *hc = c->hc;
	(void)fd, (void)what;
	if (c->evcon == NULL) {
		void *cbarg = NULL;
		bufferevent_getcb(c->bev, NULL, NULL, NULL, &cbarg);
		if (cbarg == NULL) { /* evhttp gave the connection up already */
			conn_gone(c);
			bufferevent_decref(c->bev);
			return;
		}
		bufferevent_decref(c->bev); /* evhttp holds it now */
		c->evcon = cbarg;
		evhttp_connection_set_closecb(c->evcon, on_evcon_close, c);
	}
	c->phase = PH_WAIT;
	event_del(c->deadline_ev);
	struct evhttp_request *req = current_req(hc, c->evcon);
	if (req != NULL && req->cb != on_request) {
		if (hc->orig_cb == NULL)
			hc->orig_cb = req->cb;
		req->cb = on_request;
		evhttp_request_set_header_cb(req, on_headers);
		evhttp_request_set_on_complete_cb(req, on_complete, c);
	}
	if (req != NULL && evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
		start_head(c);
}

/* evhttp_set_bevcb: a connection was accepted. */
static struct bufferevent *on_accept(struct event_base *base, void *arg)
{
	struct httpconn *hc = arg;
	struct bufferevent *bev = bufferevent_socket_new(base, -1, 0);
	if (bev == NULL)
		return NULL;
	if (hc->episode) {
		log_info("accepting connections again after %lld s (%lu failed accepts)",
		    (long long)(time(NULL) - hc->episode_t0), hc->episode_errors);
		hc->episode = 0;
	}
	struct hc_conn *c = xcalloc(1, sizeof *c);
	c->hc = hc;
	c->bev = bev;
	c->hook_ev = event_new(base, -1, 0, on_hook, c);
	c->deadline_ev = event_new(base, -1, 0, on_deadline, c);
	if (hc->reqq_off != 0)
		c->in_cb = evbuffer_add_cb(bufferevent_get_input(bev), on_input, c);
	c->next = hc->conns;
	if (hc->conns != NULL)
		hc->conns->prev = c;
	hc->conns = c;
	hc->n_conns++;
	bufferevent_incref(bev); /* until on_hook has seen what evhttp made of it */
	event_active(c->hook_ev, EV_TIMEOUT, 0);
	listener_update(hc); /* at the cap: listener_read_cb stops accepting at once */
	return bev;
}

/* Measures where struct evhttp_connection keeps its request queue (see the top): a
 * request made on a client connection to our own listener. */
static void calibrate(struct httpconn *hc, int lfd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	char host[INET6_ADDRSTRLEN] = "";
	int port = 0;
	if (getsockname(lfd, (struct sockaddr *)&ss, &sl) == 0 && ss.ss_family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		if (a->sin_addr.s_addr == htonl(INADDR_ANY))
			a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
		port = ntohs(a->sin_port);
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		if (IN6_IS_ADDR_UNSPECIFIED(&a->sin6_addr))
			a->sin6_addr = in6addr_loopback;
		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
		port = ntohs(a->sin6_port);
	}
	struct evhttp_connection *evcon = port > 0 ? evhttp_connection_base_new(hc->base, NULL,
	    host, (ev_uint16_t)port) : NULL;
	struct evhttp_request *req = evcon ? evhttp_request_new(NULL, NULL) : NULL;
	if (req != NULL && evhttp_make_request(evcon, req, EVHTTP_REQ_GET, "/") == 0) {
		ptrdiff_t off = (char *)req->next.tqe_prev - (char *)evcon;
		struct evhttp_request *first = NULL;
		if (off > 0 && off < 4096 && off % (ptrdiff_t)sizeof(void *) == 0)
			memcpy(&first, (char *)evcon + off, sizeof first);
		if (first == req)
			hc->reqq_off = (size_t)off;
	} else if (req != NULL) {
		evhttp_request_free(req);
	}
	if (evcon != NULL)
		evhttp_connection_free(evcon); /* and the request queued on it */
	if (hc->reqq_off == 0)
		log_warnx("cannot reach libevent's requests: no request deadlines, libevent's own "
		    "error pages");
}

struct httpconn *httpconn_new(struct event_base *base, struct evhttp *http,
    const struct httpconn_opts *o, httpconn_error_fn err)
{
	struct httpconn *hc = xcalloc(1, sizeof *hc);
	hc->base = base;
	hc->http = http;
	hc->o = *o;
	hc->err = err;
	hc->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	hc->resume_ev = event_new(base, -1, 0, on_resume, hc);
	hc->reap_ev = event_new(base, -1, 0, on_reap, hc);
	evhttp_set_bevcb(http, on_accept, hc);
	hc_one = hc;
	return hc;
}

int httpconn_listen(struct httpconn *hc, struct evhttp_bound_socket *bs)
{
	hc->lev = evhttp_bound_socket_get_listener(bs);
	if (hc->lev == NULL)
		return -1;
	evconnlistener_set_error_cb(hc->lev, on_accept_error);
	calibrate(hc, evhttp_bound_socket_get_fd(bs));
	return 0;
}

void httpconn_set_opts(struct httpconn *hc, const struct httpconn_opts *o)
{
	hc->o = *o;
	listener_update(hc);
}

unsigned httpconn_count(const struct httpconn *hc)
{
	return hc->n_conns;
}

void httpconn_free(struct httpconn *hc)
{
	if (hc == NULL)
		return;
	while (hc->lingers != NULL)
		linger_end(hc->lingers);
	while (hc->conns != NULL) /* only when evhttp_free did not run */
		conn_gone(hc->conns);
	hc->lev = NULL;
	on_reap(-1, 0, hc);
	event_free(hc->resume_ev);
	event_free(hc->reap_ev);
	if (hc->reserve_fd >= 0)
		close(hc->reserve_fd);
	if (hc_one == hc)
		hc_one = NULL;
	free(hc);
}

void httpconn_on_close(struct evhttp_connection *evcon,
    void (*cb)(struct evhttp_connection *, void *), void *arg)
{
	struct hc_conn *c = conn_find(hc_one, evcon);
	if (c == NULL) {
		evhttp_connection_set_closecb(evcon, cb, arg);
		return;
	}
	c->close_cb = cb;
	c->close_arg = arg;
}

unsigned httpconn_default_max(unsigned want)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
		return want;
	/* room for the registry, logs, curl, the children's pipes */
	rlim_t room = rl.rlim_cur > 256 ? rl.rlim_cur - 128 : rl.rlim_cur / 2;
	if (room >= want)
		return want;
	log_info("max_connections %u: the descriptor limit is %llu (LimitNOFILE, ulimit -n)",
	    (unsigned)room, (unsigned long long)rl.rlim_cur);
	return room > 0 ? (unsigned)room : 1;
}
