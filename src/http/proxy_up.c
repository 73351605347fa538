/*
 * proxy_up: one request's upstream transfer (libcurl on the daemon's loop through
 * curlev) and how its answer reaches the client.
 *
 * An answer that is not an event stream is kept whole (up to BUFFER_MAX) and sent with
 * its length and the backend's status. An event stream, or a longer answer, goes out
 * as a chunked reply, each piece as curl hands it over. Backpressure: when the
 * client's connection holds more than HIGH_WATER unsent bytes, the next piece is
 * refused with CURL_WRITEFUNC_PAUSE (curl keeps it and stops reading the backend);
 * evhttp calls on_flushed once the client has taken everything, and the transfer
 * resumes. A backend that fails before the answer started gets a 502; after, the
 * stream ends with one error event in the route's shape (OpenAI's or Anthropic's) and
 * is closed.
 */
#include "proxy_int.h"
#include "reply.h"
#include "curlev.h"
#include "util.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define BUFFER_MAX (8u << 20)
#define HIGH_WATER (256u << 10)
#define UPSTREAM_SILENCE_S 600

static size_t client_unsent(struct preq *r)
{
	struct bufferevent *bev = evhttp_connection_get_bufferevent(r->evcon);
	return evbuffer_get_length(bufferevent_get_output(bev));
}

/* evhttp wrote everything queued for the client: a paused transfer goes on. */
static void on_flushed(struct evhttp_connection *evcon, void *arg)
{
	struct preq *r = arg;
	(void)evcon;
	if (r->paused && r->easy != NULL) {
		r->paused = 0;
		curl_easy_pause(r->easy, CURLPAUSE_CONT);
	}
}

static void send_chunk(struct preq *r, const void *p, size_t len)
{
	struct evbuffer *b = r->p->scratch;
	evbuffer_add(b, p, len);
	evhttp_send_reply_chunk_with_cb(r->req, b, on_flushed, r);
	evbuffer_drain(b, evbuffer_get_length(b));
}

/* Sends the status line and headers of a chunked answer, then what was kept. */
static void start_stream(struct preq *r)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
	evhttp_add_header(h, "Content-Type", r->ctype[0] ? r->ctype : "application/json");
	evhttp_add_header(h, "Cache-Control", "no-cache");
	evhttp_add_header(h, "X-Accel-Buffering", "no");
	evhttp_send_reply_start(r->req, (int)(r->status ? r->status : 200), NULL);
	r->streaming = 1;
	size_t n = evbuffer_get_length(r->out);
	if (n > 0) {
		evhttp_send_reply_chunk_with_cb(r->req, r->out, on_flushed, r);
		evbuffer_drain(r->out, evbuffer_get_length(r->out));
	}
}

static size_t on_header(char *line, size_t size, size_t n, void *arg)
{
	struct preq *r = arg;
	size_t len = size * n;
	if (len > 5 && strncmp(line, "HTTP/", 5) == 0) {
		r->ctype[0] = '\0'; /* a new answer (after a 100 Continue) */
	} else if (len > 13 && strncasecmp(line, "Content-Type:", 13) == 0) {
		const char *v = line + 13;
		size_t l = len - 13;
		while (l > 0 && (*v == ' ' || *v == '\t'))
			v++, l--;
		while (l > 0 && (v[l - 1] == '\r' || v[l - 1] == '\n' || v[l - 1] == ' '))
			l--;
		snprintf(r->ctype, sizeof r->ctype, "%.*s", (int)l, v);
	}
	return len;
}

static size_t on_body(char *ptr, size_t size, size_t n, void *arg)
{
	struct preq *r = arg;
	size_t len = size * n;
	if (r->gone || r->req == NULL)
		return 0; /* aborts the transfer */
	if (!r->streaming) {
		if (r->status == 0)
			curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
		int sse = strncasecmp(r->ctype, "text/event-stream", 17) == 0;
		if (!sse && evbuffer_get_length(r->out) + len <= BUFFER_MAX) {
			evbuffer_add(r->out, ptr, len);
			return len;
		}
		start_stream(r);
	}
	if (client_unsent(r) > HIGH_WATER) {
		if (!r->paused)
			r->p->n_paused++;
		r->paused = 1;
		return CURL_WRITEFUNC_PAUSE; /* curl keeps the piece; on_flushed resumes */
	}
	send_chunk(r, ptr, len);
	return len;
}

int proxy_up_start(struct preq *r, const char *base, const char *key)
{
	char url[512];
	snprintf(url, sizeof url, "%s%s", base, r->pm->ollama ? r->route->ollama :
	    r->route->upstream);
	r->out = evbuffer_new();
	r->easy = curl_easy_init();
	if (r->easy == NULL || r->out == NULL) {
		reply_error(r->req, 502, "backend_failed", "cannot start a transfer");
		return -1;
	}
	r->hdrs = curl_slist_append(NULL, "Content-Type: application/json");
	r->hdrs = curl_slist_append(r->hdrs, "Expect:");
	if (key != NULL) {
		char *auth = xasprintf("Authorization: Bearer %s", key);
		r->hdrs = curl_slist_append(r->hdrs, auth);
		explicit_bzero(auth, strlen(auth));
		free(auth);
	}
	CURL *e = r->easy;
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, r);
	curl_easy_setopt(e, CURLOPT_POST, 1L);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrs);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	/* a backend that sends nothing for this long is taken as hung (a long prompt on
	 * a CPU answers its first byte within minutes) */
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, (long)UPSTREAM_SILENCE_S);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http");
	if (curlev_add(r->p->cev, e) != CURLM_OK) {
		reply_error(r->req, 502, "backend_failed", "cannot start a transfer");
		return -1;
	}
	return 0;
}

void proxy_up_abort(struct preq *r)
{
	if (r->easy != NULL) {
		curlev_remove(r->p->cev, r->easy);
		curl_easy_cleanup(r->easy); /* closes the connection: llama-server stops */
		r->easy = NULL;
	}
}

void proxy_up_done(void *arg, CURL *easy, CURLcode rc)
{
	struct preq *r = NULL;
	(void)arg;
	curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&r);
	if (r == NULL)
		return;
	if (r->status == 0)
		curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &r->status);
	char msg[CURL_ERROR_SIZE + 128];
	if (rc != CURLE_OK)
		snprintf(msg, sizeof msg, "the backend failed: %s", r->errbuf[0] ? r->errbuf :
		    curl_easy_strerror(rc));
	if (rc != CURLE_OK)
		r->p->n_upstream_errors++;
	if (r->req == NULL || r->gone) {
		/* nobody to answer */
	} else if (r->streaming) {
		if (rc != CURLE_OK) {
			reply_error_event(r->route ? r->route->path : NULL, r->p->scratch, "backend_failed", msg);
			evhttp_send_reply_chunk(r->req, r->p->scratch);
			evbuffer_drain(r->p->scratch, evbuffer_get_length(r->p->scratch));
		}
		proxy_detach(r);
		evhttp_send_reply_end(r->req);
		r->req = NULL;
	} else if (rc != CURLE_OK || r->status < 100) {
		proxy_detach(r);
		reply_error(r->req, 502, "backend_failed", "%s", rc != CURLE_OK ? msg :
		    "the backend sent no answer");
		r->req = NULL;
	} else {
		evhttp_add_header(evhttp_request_get_output_headers(r->req), "Content-Type",
		    r->ctype[0] ? r->ctype : "application/json");
		proxy_detach(r);
		evhttp_send_reply(r->req, (int)r->status, NULL, r->out);
		r->req = NULL;
	}
	r->p->n_answered++;
	proxy_finish(r);
}
