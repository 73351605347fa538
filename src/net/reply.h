/*
 * reply: how mloffloadd answers an HTTP request, in one place for every route (api,
 * api_ui, proxy, the scan waiters, the SSE streams): a JSON body, the one error
 * envelope (OpenAI's {"error":{"code","message","type","param"}}, or Anthropic's
 * {"type":"error","error":{"type","message"}} on Anthropic's routes, so that each
 * API's clients read our errors), the error event that ends a stream, and the one
 * Retry-After rule. It knows HTTP and JSON, nothing of the daemon's parts: everything
 * that answers includes it, it includes none of them.
 */
#ifndef MLO_REPLY_H
#define MLO_REPLY_H

#include <jansson.h>

struct evbuffer;
struct evhttp_request;

/* The one Retry-After of every 503 the daemon sends (a full load or /v1 queue, too
 * many scan waiters, log followers or /events subscribers, a shutdown): the seconds a
 * client waits before asking again. One constant: a refusal comes from a bounded
 * queue that drains at the pace of model loads (seconds), so a shorter wait only
 * adds refused requests, and a longer one leaves room unused. */
#define REPLY_RETRY_AFTER_S 5

/* The error envelopes: which API's clients read an answer. */
enum reply_shape { REPLY_OPENAI, REPLY_ANTHROPIC };

/* The shape of the route at path (NULL: OpenAI's): Anthropic's for its Messages routes
 * (/v1/messages, /v1/messages/count_tokens), else OpenAI's. */
enum reply_shape reply_shape_of(const char *path);
/* The error body (new) in shape for status, code and msg (msg may quote a client's
 * bytes: it is JSON-escaped like any string). */
json_t *reply_error_json(enum reply_shape shape, int status, const char *code,
    const char *msg);
/* Appends the error that ends a stream of the route at path (NULL: OpenAI's) as one
 * server-sent event: "event: error" with Anthropic's body, or a data line with OpenAI's. */
void reply_error_event(const char *path, struct evbuffer *b, const char *code,
    const char *msg);

/* Sends j (stolen) with status, as application/json; a body that cannot be encoded
 * is answered 500 with the envelope. */
void reply_json(struct evhttp_request *req, int status, json_t *j);
/* Sends text (len bytes of JSON, borrowed) with status, as reply_json does. */
void reply_json_text(struct evhttp_request *req, int status, const char *text, size_t len);
/* Sends the error envelope of req's route with status and code. */
void reply_error(struct evhttp_request *req, int status, const char *code,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Adds "Retry-After: REPLY_RETRY_AFTER_S" to req's answer (before reply_error). */
void reply_retry_after(struct evhttp_request *req);
/* Sends status with no body (204 to a CORS preflight). */
void reply_empty(struct evhttp_request *req, int status);

#endif
