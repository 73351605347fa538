/*
 * proxy_route: the one table of the model-serving routes the proxy forwards (OpenAI's,
 * Anthropic's Messages, llama-server's own), saying for each where it goes upstream,
 * which kind of model serves it, and which error envelope its clients read. proxy.c
 * handles every row the same way (the model from the body or ?model=, aliases, the
 * queue, on-demand loading, streaming); only what differs between APIs lives here.
 */
#include "proxy_route.h"
#include "scan.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <sys/queue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* path, llama-server's path, Ollama's path (NULL: refused for Ollama models), the
 * kind of model that serves it, the error envelope */
static const struct proxy_route table[] = {
	{ "/v1/chat/completions", "/v1/chat/completions", "/v1/chat/completions", PK_CHAT,
	  PS_OPENAI },
	{ "/v1/completions", "/v1/completions", "/v1/completions", PK_CHAT, PS_OPENAI },
	{ "/v1/embeddings", "/v1/embeddings", "/v1/embeddings", PK_EMBEDDING, PS_OPENAI },
	{ "/v1/responses", "/v1/responses", "/v1/responses", PK_CHAT, PS_OPENAI },
	{ "/v1/messages", "/v1/messages", "/v1/messages", PK_CHAT, PS_ANTHROPIC },
	{ "/v1/messages/count_tokens", "/v1/messages/count_tokens", NULL, PK_CHAT,
	  PS_ANTHROPIC },
	{ "/v1/rerank", "/v1/rerank", NULL, PK_RERANK, PS_OPENAI },
	{ "/rerank", "/v1/rerank", NULL, PK_RERANK, PS_OPENAI },
	{ "/infill", "/infill", NULL, PK_CHAT, PS_OPENAI },
	{ "/tokenize", "/tokenize", NULL, PK_ANY, PS_OPENAI },
	{ "/detokenize", "/detokenize", NULL, PK_ANY, PS_OPENAI },
	{ "/apply-template", "/apply-template", NULL, PK_CHAT, PS_OPENAI },
	/* llama-server transcribes only with an audio encoder (a multimodal projector that
	 * takes audio); none can be generated or tested here, so it is not forwarded */
	{ "/v1/audio/transcriptions", NULL, NULL, PK_NONE, PS_OPENAI },
	{ NULL, NULL, NULL, PK_NONE, PS_OPENAI },
};

const struct proxy_route *proxy_route_find(const char *path)
{
	for (const struct proxy_route *r = table; path != NULL && r->path != NULL; r++)
		if (strcmp(r->path, path) == 0)
			return r;
	return NULL;
}

static const struct proxy_route *route_of(struct evhttp_request *req)
{
	const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
	return proxy_route_find(u ? evhttp_uri_get_path(u) : NULL);
}

const char *proxy_route_kind_name(enum proxy_kind k)
{
	switch (k) {
	case PK_CHAT: return "chat";
	case PK_EMBEDDING: return "embedding";
	case PK_RERANK: return "rerank";
	case PK_ANY: return "any";
	default: return "unknown";
	}
}

enum proxy_kind proxy_route_kind(json_t *model)
{
	json_t *pool = json_object_get(model, "pooling");
	if (json_is_string(pool))
		return strcmp(json_string_value(pool), "rank") == 0 ? PK_RERANK : PK_EMBEDDING;
	if (json_is_null(pool))
		return PK_CHAT;
	/* scanned before the pooling was recorded: an embedding model or a reranker */
	return json_is_true(json_object_get(model, "embedding")) ? PK_ANY : PK_CHAT;
}

void proxy_route_query_model(struct evhttp_request *req, char *out, size_t outlen)
{
	const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
	const char *q = u ? evhttp_uri_get_query(u) : NULL, *v = NULL;
	struct evkeyvalq kv;
	TAILQ_INIT(&kv);
	if (q != NULL && evhttp_parse_query_str(q, &kv) == 0)
		v = evhttp_find_header(&kv, "model");
	snprintf(out, outlen, "%s", v != NULL && strlen(v) < outlen ? v : "");
	evhttp_clear_headers(&kv);
}

const char *proxy_route_kind_needed(enum proxy_kind k)
{
	switch (k) {
	case PK_EMBEDDING: return "an embedding model (GGUF pooling type mean, cls or last; "
	    "mloffload does not serve embeddings from chat models)";
	case PK_RERANK: return "a reranker (GGUF pooling type rank)";
	default: return "a chat (generative) model";
	}
}

int proxy_route_serves(const struct proxy_route *r, enum proxy_kind k)
{
	if (r->need == PK_ANY || k == PK_ANY)
		return 1;
	return r->need == k;
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

json_t *proxy_route_error_json(struct evhttp_request *req, int status, const char *code,
    const char *msg)
{
	const struct proxy_route *r = req ? route_of(req) : NULL;
	/* the message may quote the client's bytes: never let them break the JSON */
	if (r != NULL && r->shape == PS_ANTHROPIC)
		return json_pack("{s:s,s:{s:s,s:o}}", "type", "error", "error", "type",
		    anthropic_type(status), "message", scan_json_str(msg));
	/* OpenAI's shape, so that its clients read our errors too */
	return json_pack("{s:{s:s,s:o,s:s,s:n}}", "error", "code", code, "message",
	    scan_json_str(msg), "type", status >= 500 ? "server_error" :
	    "invalid_request_error", "param");
}

void proxy_route_error_event(const struct proxy_route *r, struct evbuffer *b,
    const char *code, const char *msg)
{
	json_t *e;
	if (r != NULL && r->shape == PS_ANTHROPIC)
		e = json_pack("{s:s,s:{s:s,s:o}}", "type", "error", "error", "type", "api_error",
		    "message", scan_json_str(msg));
	else
		e = json_pack("{s:{s:o,s:s,s:n,s:s}}", "error", "message", scan_json_str(msg),
		    "type", "server_error", "param", "code", code);
	char *s = json_dumps(e, JSON_COMPACT);
	/* Anthropic's SDK reads a named "error" event; OpenAI's a data line with "error" */
	evbuffer_add_printf(b, "%sdata: %s\n\n", r != NULL && r->shape == PS_ANTHROPIC ?
	    "event: error\n" : "", s ? s : "{}");
	free(s);
	json_decref(e);
}
