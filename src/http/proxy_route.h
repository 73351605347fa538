/*
 * proxy_route: the table of routes the proxy forwards to a model (docs/proxy.md lists
 * them): OpenAI's /v1 routes, Anthropic's /v1/messages, and llama-server's rerank,
 * infill, tokenize, detokenize and apply-template; for each, the path upstream, the
 * kind of model that serves it (the error envelope is reply.c's).
 */
#ifndef MLO_PROXY_ROUTE_H
#define MLO_PROXY_ROUTE_H

#include <jansson.h>

#include "registry.h"

struct evhttp_request;

/* What a model serves (from its GGUF's pooling type), or what a route needs. */
enum proxy_kind {
	PK_NONE,        /* a route: forwarded to no model (501) */
	PK_CHAT,        /* generative: chat, completions, responses, messages, infill */
	PK_EMBEDDING,   /* pooling mean, cls or last: /v1/embeddings */
	PK_RERANK,      /* pooling rank: /v1/rerank */
	PK_ANY,         /* a route any model serves; a model of unknown kind */
};

struct proxy_route {
	const char *path;      /* what clients call */
	const char *upstream;  /* llama-server's path */
	const char *ollama;    /* Ollama's path; NULL: not for Ollama's models */
	enum proxy_kind need;
};

/* The row of path (exact), or NULL. Static. */
const struct proxy_route *proxy_route_find(const char *path);
/* The routes a registry model's kind (registry.h) serves. Static. */
enum proxy_kind proxy_route_kind(enum reg_kind k);
/* "chat", "embedding", "rerank", "any". Static. */
const char *proxy_route_kind_name(enum proxy_kind k);
/* The query's model= into out ("" when absent or too long), for the routes whose API
 * has no model field (llama-server ignores one in the body). */
void proxy_route_query_model(struct evhttp_request *req, char *out, size_t outlen);
/* What a model must be to serve a route that needs k, in words for an error. Static. */
const char *proxy_route_kind_needed(enum proxy_kind k);
/* 1 if a model of kind k serves route r. */
int proxy_route_serves(const struct proxy_route *r, enum proxy_kind k);

#endif
