/*
 * proxy_route: the one table of the model-serving routes the proxy forwards (OpenAI's,
 * Anthropic's Messages, llama-server's own), saying for each where it goes upstream,
 * and which kind of model serves it (reply.c picks the error envelope by path). proxy.c
 * handles every row the same way (the model from the body or ?model=, aliases, the
 * queue, on-demand loading, streaming); only what differs between APIs lives here.
 */
#include "proxy_route.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <sys/queue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* path, llama-server's path, Ollama's path (NULL: refused for Ollama models), the
 * kind of model that serves it */
static const struct proxy_route table[] = {
	{ "/v1/chat/completions", "/v1/chat/completions", "/v1/chat/completions", PK_CHAT },
	{ "/v1/completions", "/v1/completions", "/v1/completions", PK_CHAT },
	{ "/v1/embeddings", "/v1/embeddings", "/v1/embeddings", PK_EMBEDDING },
	{ "/v1/responses", "/v1/responses", "/v1/responses", PK_CHAT },
	{ "/v1/messages", "/v1/messages", "/v1/messages", PK_CHAT },
	{ "/v1/messages/count_tokens", "/v1/messages/count_tokens", NULL, PK_CHAT },
	{ "/v1/rerank", "/v1/rerank", NULL, PK_RERANK },
	{ "/rerank", "/v1/rerank", NULL, PK_RERANK },
	{ "/infill", "/infill", NULL, PK_CHAT },
	{ "/tokenize", "/tokenize", NULL, PK_ANY },
	{ "/detokenize", "/detokenize", NULL, PK_ANY },
	{ "/apply-template", "/apply-template", NULL, PK_CHAT },
	/* llama-server transcribes only with an audio encoder (a multimodal projector that
	 * takes audio); none can be generated or tested here, so it is not forwarded */
	{ "/v1/audio/transcriptions", NULL, NULL, PK_NONE },
	{ NULL, NULL, NULL, PK_NONE },
};

const struct proxy_route *proxy_route_find(const char *path)
{
	for (const struct proxy_route *r = table; path != NULL && r->path != NULL; r++)
		if (strcmp(r->path, path) == 0)
			return r;
	return NULL;
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

enum proxy_kind proxy_route_kind(enum reg_kind k)
{
	switch (k) {
	case REG_KIND_EMBEDDING: return PK_EMBEDDING;
	case REG_KIND_RERANK: return PK_RERANK;
	case REG_KIND_ANY: return PK_ANY;
	default: return PK_CHAT;
	}
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
