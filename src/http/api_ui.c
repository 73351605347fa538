/*
 * api_ui: the dashboard's files and the llama-server log route (see api_ui.h).
 *
 * A log follower is a chunked answer fed by a timer that reads what the child wrote
 * since the last look (a file offset; a file that got shorter was rotated or
 * truncated by a new load, and is read again from its start). Going away follows
 * notify_sse.c: evhttp's close callback only marks the follower closed, its own timer
 * frees it on the next tick. Knowingly simple: a poll every LOG_POLL_MS rather than
 * inotify, one module-wide list (one daemon per process).
 */
#include "api_ui.h"
#include "api.h"
#include "reply.h"
#include "api_ui_assets.h"
#include "config.h"
#include "httpconn.h"
#include "registry.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOG_TAIL_DEFAULT (64 * 1024)
#define LOG_TAIL_MAX (1024 * 1024)
#define LOG_READ_MAX (64 * 1024)     /* per tick and follower */
#define LOG_MAX_UNSENT (1024 * 1024)
#define LOG_POLL_MS 250
#define LOG_WRITE_TIMEOUT_S 60

/* ---- the dashboard ---- */

void api_ui_static(struct api *api, struct evhttp_request *req, const char *sub)
{
	const char *name = *sub ? sub : "index.html";
	const struct ui_asset *a = ui_assets;
	while (a->name != NULL && strcmp(a->name, name) != 0)
		a++;
	if (a->name == NULL) {
		reply_error(req, 404, "not_found", "no file /ui/%.100s", sub);
		return;
	}
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	evhttp_add_header(h, "Content-Type", a->type);
	evhttp_add_header(h, "Cache-Control", "no-cache");
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	evhttp_add_header(h, "Referrer-Policy", "no-referrer");
	evhttp_add_header(h, "Content-Security-Policy", "default-src 'self'; img-src 'self' "
	    "data:; style-src 'self'; script-src 'self'; connect-src 'self'; "
	    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'");
	struct evbuffer *b = evbuffer_new();
	evbuffer_add_reference(b, a->data, a->len, NULL, NULL);
	evhttp_send_reply(req, 200, "OK", b);
	evbuffer_free(b);
}

void api_ui_redirect(struct api *a, struct evhttp_request *req, const char *sub)
{
	evhttp_add_header(evhttp_request_get_output_headers(req), "Location", "/ui/");
	evhttp_send_reply(req, 301, "Moved Permanently", NULL);
}

/* ---- llama-server logs ---- */

struct follower {
	struct api *a;
	struct evhttp_request *req;        /* NULL once libevent freed it */
	struct evhttp_connection *evcon;   /* NULL once closed */
	struct event *timer;
	char *path;
	off_t off;
	ino_t ino;                         /* of the file off is in */
	int closed;
	struct follower *next;
};

static struct follower *followers;
static size_t n_followers;

static void follower_unlink(struct follower *f)
{
	for (struct follower **p = &followers; *p != NULL; p = &(*p)->next) {
		if (*p == f) {
			*p = f->next;
			n_followers--;
			return;
		}
	}
}

/* Frees f; an open stream ends first (why, when not NULL, as its last line). */
static void follower_free(struct follower *f, const char *why)
{
	if (!f->closed) {
		if (why != NULL) {
			struct evbuffer *b = evbuffer_new();
			evbuffer_add_printf(b, "\n[mloffloadd: %s]\n", why);
			evhttp_send_reply_chunk(f->req, b);
			evbuffer_free(b);
		}
		httpconn_on_close(f->evcon, NULL, NULL);
		evhttp_send_reply_end(f->req);
	} else if (f->req != NULL) {
		evhttp_send_reply_end(f->req);   /* no connection: only frees it */
	}
	follower_unlink(f);
	event_free(f->timer);
	free(f->path);
	free(f);
}

static void on_close(struct evhttp_connection *evcon, void *arg)
{
	struct follower *f = arg;
	if (evhttp_request_get_connection(f->req) != NULL)
		f->req = NULL;   /* still on the connection: freed with it */
	f->evcon = NULL;
	f->closed = 1;
	event_active(f->timer, EV_TIMEOUT, 0);
}

/* Appends to b what path holds from *off on, at most max bytes; another file than
 * *ino (rotated by a new load) or one shorter than *off is read from its start.
 * Returns 0, or -1 when the file cannot be read. */
static int read_from(const char *path, off_t *off, ino_t *ino, size_t max,
    struct evbuffer *b)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (st.st_size < *off || (*ino != 0 && st.st_ino != *ino))
		*off = 0;
	*ino = st.st_ino;
	char buf[8192];
	while (max > 0) {
		ssize_t n = pread(fd, buf, max < sizeof buf ? max : sizeof buf, *off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		evbuffer_add(b, buf, (size_t)n);
		*off += n;
		max -= (size_t)n;
	}
	close(fd);
	return 0;
}

static void follow_tick(evutil_socket_t fd, short what, void *arg)
{
	struct follower *f = arg;
	if (f->closed) {
		follower_free(f, NULL);
		return;
	}
	struct evbuffer *out =
	    bufferevent_get_output(evhttp_connection_get_bufferevent(f->evcon));
	if (evbuffer_get_length(out) > LOG_MAX_UNSENT) {
		log_warnx("api: a log follower of %s dropped: it reads too slowly", f->path);
		follower_free(f, "dropped: this client reads too slowly");
		return;
	}
	struct evbuffer *b = evbuffer_new();
	read_from(f->path, &f->off, &f->ino, LOG_READ_MAX, b);   /* a missing file may come back */
	if (evbuffer_get_length(b) > 0)
		evhttp_send_reply_chunk(f->req, b);
	evbuffer_free(b);
	struct timeval tv = { 0, LOG_POLL_MS * 1000 };
	evtimer_add(f->timer, &tv);
}

/* 1 if id can name a log file: letters, digits, '.', '_', '-', not starting with '.'. */
static int id_ok(const char *id)
{
	size_t n = strlen(id);
	if (n == 0 || n > 128 || id[0] == '.')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)id[i]) && strchr("._-", id[i]) == NULL)
			return 0;
	return 1;
}

/* Reads ?tail=N&follow=0|1. Returns 0, or -1 when a value is bad. */
static int log_query(struct evhttp_request *req, long long *tail, int *follow)
{
	const char *q = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
	struct evkeyvalq kv;
	TAILQ_INIT(&kv);
	*tail = LOG_TAIL_DEFAULT;
	*follow = 0;
	if (q == NULL)
		return 0;
	if (evhttp_parse_query_str(q, &kv) < 0)
		return -1;
	const char *t = evhttp_find_header(&kv, "tail"), *fo = evhttp_find_header(&kv, "follow");
	int rc = 0;
	if (t != NULL && util_parse_int(t, 0, LOG_TAIL_MAX, tail) < 0)
		rc = -1;
	if (fo != NULL && strcmp(fo, "1") != 0 && strcmp(fo, "0") != 0 &&
	    strcmp(fo, "true") != 0 && strcmp(fo, "false") != 0)
		rc = -1;
	*follow = fo != NULL && (fo[0] == '1' || fo[0] == 't');
	evhttp_clear_headers(&kv);
	return rc;
}

void api_ui_logs(struct api *a, struct evhttp_request *req, const char *id)
{
	long long tail;
	int follow;
	if (log_query(req, &tail, &follow) < 0) {
		reply_error(req, 400, "bad_request", "tail: bytes 0..%d; follow: 0 or 1",
		    LOG_TAIL_MAX);
		return;
	}
	struct reg_model m;
	if (!id_ok(id) || registry_model_get(a->env.reg, id, &m) < 0) {
		reply_error(req, 404, "model_not_found", "no model with id '%.128s' (GET "
		    "/models lists them)", id);
		return;
	}
	registry_model_free(&m);
	char *path = xasprintf("%s/llama-%s.log", a->env.cfg->state_dir, id);
	struct stat st;
	if (stat(path, &st) < 0 || !S_ISREG(st.st_mode)) {
		reply_error(req, 404, "no_log", "%s has no llama-server log yet (it was never "
		    "loaded by this daemon)", id);
		free(path);
		return;
	}
	if (follow && n_followers >= API_UI_MAX_FOLLOW) {
		reply_retry_after(req);
		reply_error(req, 503, "busy", "at most %d log followers", API_UI_MAX_FOLLOW);
		free(path);
		return;
	}
	off_t off = st.st_size > tail ? st.st_size - (off_t)tail : 0;
	ino_t ino = 0;
	struct evbuffer *b = evbuffer_new();
	read_from(path, &off, &ino, (size_t)tail, b);
	if (off > 0 && (size_t)tail < (size_t)st.st_size) {
		/* start at a line: what precedes the first newline is a cut line */
		struct evbuffer_ptr nl = evbuffer_search(b, "\n", 1, NULL);
		if (nl.pos >= 0)
			evbuffer_drain(b, (size_t)nl.pos + 1);
	}
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	evhttp_add_header(h, "Content-Type", "text/plain; charset=utf-8");
	evhttp_add_header(h, "Cache-Control", "no-cache");
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	if (!follow || evcon == NULL) {
		evhttp_send_reply(req, 200, "OK", b);
		evbuffer_free(b);
		free(path);
		return;
	}
	evhttp_add_header(h, "X-Accel-Buffering", "no");
	evhttp_add_header(h, "Connection", "close");
	evhttp_send_reply_start(req, 200, "OK");
	if (evbuffer_get_length(b) > 0)
		evhttp_send_reply_chunk(req, b);
	evbuffer_free(b);
	struct timeval wtv = { LOG_WRITE_TIMEOUT_S, 0 };
	bufferevent_set_timeouts(evhttp_connection_get_bufferevent(evcon), NULL, &wtv);
	struct follower *f = xcalloc(1, sizeof *f);
	f->a = a;
	f->req = req;
	f->evcon = evcon;
	f->path = path;
	f->off = off;
	f->ino = ino;
	f->timer = evtimer_new(a->env.base, follow_tick, f);
	f->next = followers;
	followers = f;
	n_followers++;
	/* through the connection layer: it holds the one close callback evhttp has */
	httpconn_on_close(evcon, on_close, f);
	struct timeval tv = { 0, LOG_POLL_MS * 1000 };
	evtimer_add(f->timer, &tv);
}

void api_ui_free(void)
{
	while (followers != NULL)
		follower_free(followers, "the daemon is stopping");
}
