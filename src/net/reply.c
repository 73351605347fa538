/*
 * reply: the answers of every route (see reply.h): JSON bodies, the one error envelope
 * in OpenAI's or Anthropic's shape, the error event of a stream, Retry-After.
 */
#include "reply.h"
#include "util.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum reply_shape reply_shape_of(const char *path)
{
	if (path != NULL && (strcmp(path, "/v1/messages") == 0 ||
	    strcmp(path, "/v1/messages/count_tokens") == 0))
		return REPLY_ANTHROPIC;
	return REPLY_OPENAI;
}

/* Anthropic's error types by status (its API's "errors" page). */
static const char *anthropic_type(int status)
{
	switch (status) {
	case 400: return "invalid_request_error";
	case 401: return "authentication_error";
	case 403: return "permission_error";
	case 404: return "not_found_error";
	case 413: return "request_too_large";
	case 429: return "rate_limit_error";
	case 503: case 529: return "overloaded_error";
	default: return status >= 500 ? "api_error" : "invalid_request_error";
	}
}

json_t *reply_error_json(enum reply_shape shape, int status, const char *code,
    const char *msg)
{
	if (shape == REPLY_ANTHROPIC)
		return json_pack("{s:s,s:{s:s,s:o}}", "type", "error", "error", "type",
		    anthropic_type(status), "message", util_json_str(msg));
	return json_pack("{s:{s:s,s:o,s:s,s:n}}", "error", "code", code, "message",
	    util_json_str(msg), "type", status >= 500 ? "server_error" : "invalid_request_error",
	    "param");
}

void reply_error_event(const char *path, struct evbuffer *b, const char *code,
    const char *msg)
{
	int anthropic = reply_shape_of(path) == REPLY_ANTHROPIC;
	json_t *e;
	if (anthropic)
		e = json_pack("{s:s,s:{s:s,s:o}}", "type", "error", "error", "type", "api_error",
		    "message", util_json_str(msg));
	else
		e = json_pack("{s:{s:o,s:s,s:n,s:s}}", "error", "message", util_json_str(msg),
		    "type", "server_error", "param", "code", code);
	char *s = json_dumps(e, JSON_COMPACT);
	/* Anthropic's SDK reads a named "error" event; OpenAI's a data line with "error" */
	evbuffer_add_printf(b, "%sdata: %s\n\n", anthropic ? "event: error\n" : "",
	    s ? s : "{}");
	free(s);
	json_decref(e);
}

void reply_json(struct evhttp_request *req, int status, json_t *j)
{
	static const char fallback[] = "{\"error\":{\"code\":\"internal\",\"message\":"
	    "\"the answer could not be encoded\"}}";
	char *s = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(j);
	if (s == NULL) {
		s = xstrdup(fallback);
		status = 500;
	}
	reply_json_text(req, status, s, strlen(s));
	free(s);
}

void reply_json_text(struct evhttp_request *req, int status, const char *text, size_t len)
{
	struct evbuffer *b = evbuffer_new();
	evbuffer_add(b, text, len);
	evbuffer_add(b, "\n", 1);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	    "application/json");
	evhttp_send_reply(req, status, NULL, b);
	evbuffer_free(b);
}

void reply_error(struct evhttp_request *req, int status, const char *code,
    const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
	reply_json(req, status, reply_error_json(reply_shape_of(u ? evhttp_uri_get_path(u) :
	    NULL), status, code, msg));
}

void reply_retry_after(struct evhttp_request *req)
{
	char ra[16];
	snprintf(ra, sizeof ra, "%d", REPLY_RETRY_AFTER_S);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", ra);
}

void reply_empty(struct evhttp_request *req, int status)
{
	evhttp_send_reply(req, status, status == 204 ? "No Content" : NULL, NULL);
}
