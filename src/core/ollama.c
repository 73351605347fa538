/*
 * ollama: keep_alive requests to Ollama on libevent's evhttp client. One connection
 * per request, freed once its answer is handled (knowingly simple: loads are rare).
 */
#include "ollama.h"
#include "util.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ANSWER_MAX (64 * 1024)
#define TIMEOUT_S 300 /* a large model may take minutes to load */

struct req {
	struct evhttp_connection *conn;
	struct event *reap;
	ollama_cb cb;
	void *arg;
};

static void reap(evutil_socket_t fd, short ev, void *arg)
{
	struct req *r = arg;
	evhttp_connection_free(r->conn);
	event_free(r->reap);
	free(r);
}

static void done(struct evhttp_request *hr, void *arg)
{
	struct req *r = arg;
	int status = hr ? evhttp_request_get_response_code(hr) : 0;
	char msg[512] = "";
	if (hr != NULL && status != 200) {
		struct evbuffer *b = evhttp_request_get_input_buffer(hr);
		size_t n = evbuffer_get_length(b);
		char *body = xmalloc(n > ANSWER_MAX ? ANSWER_MAX + 1 : n + 1);
		n = (size_t)evbuffer_copyout(b, body, n > ANSWER_MAX ? ANSWER_MAX : n);
		body[n] = '\0';
		json_error_t je;
		json_t *j = json_loads(body, 0, &je);
		const char *e = json_string_value(json_object_get(j, "error"));
		snprintf(msg, sizeof msg, "%s", e ? e : "unexpected answer");
		json_decref(j);
		free(body);
	} else if (hr == NULL) {
		snprintf(msg, sizeof msg, "no answer");
	}
	r->cb(r->arg, status, msg);
	/* the connection is freed on the next loop turn, not inside its own callback */
	event_active(r->reap, EV_TIMEOUT, 0);
}

int ollama_keep_alive(struct event_base *base, const char *url, const char *name,
    long keep_alive_s, ollama_cb cb, void *arg)
{
	struct evhttp_uri *u = evhttp_uri_parse(url);
	if (u == NULL || evhttp_uri_get_host(u) == NULL) {
		evhttp_uri_free(u);
		return -1;
	}
	int port = evhttp_uri_get_port(u);
	struct req *r = xcalloc(1, sizeof *r);
	r->cb = cb;
	r->arg = arg;
	r->conn = evhttp_connection_base_new(base, NULL, evhttp_uri_get_host(u),
	    (unsigned short)(port > 0 ? port : 11434));
	evhttp_uri_free(u);
	evhttp_connection_set_timeout(r->conn, TIMEOUT_S);
	r->reap = event_new(base, -1, 0, reap, r);
	json_t *body = json_pack("{s:s,s:I,s:b}", "model", name, "keep_alive",
	    (json_int_t)keep_alive_s, "stream", 0);
	char *s = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	struct evhttp_request *hr = evhttp_request_new(done, r);
	struct evkeyvalq *h = evhttp_request_get_output_headers(hr);
	evhttp_add_header(h, "Host", "127.0.0.1");
	evhttp_add_header(h, "Content-Type", "application/json");
	evbuffer_add(evhttp_request_get_output_buffer(hr), s, strlen(s));
	free(s);
	if (evhttp_make_request(r->conn, hr, EVHTTP_REQ_POST, "/api/generate") < 0) {
		evhttp_connection_free(r->conn);
		event_free(r->reap);
		free(r);
		return -1;
	}
	return 0;
}
