/*
 * reqcheck: the pure part of the daemon's request front, kept apart from the handlers
 * so that the HTTP fuzz harness (fuzz/fuzz_http.c) runs exactly the code the daemon
 * runs: the route table and its matching, path and query validation, method names,
 * and the parsers of the JSON bodies (load options, the /v1 request checks). Nothing
 * here touches the daemon's state or answers a request.
 */
#ifndef MLO_REQCHECK_H
#define MLO_REQCHECK_H

#include <jansson.h>
#include <stddef.h>

#include "scheduler.h"

#define REQCHECK_MAX_QUERY 2048
#define REQCHECK_MAX_ID 256
#define REQCHECK_N_ROUTES 32

struct reqcheck_route {
	const char *path;     /* exact path, or a prefix when it ends in '/' */
	const char *name;     /* label in /metrics */
	int methods;          /* EVHTTP_REQ_* */
};

/* The daemon's routes, in the order of api.c's handlers. */
extern const struct reqcheck_route reqcheck_routes[REQCHECK_N_ROUTES];

/* The name of method m (an EVHTTP_REQ_* value), "OTHER" for none of them. */
const char *reqcheck_method(int m);
/* Decodes the raw path into *out (heap, free()). Returns 0, or -1 with *why (static)
 * when it does not decode or holds a control byte (%00 included). */
int reqcheck_path(const char *raw, char **out, const char **why);
/* Checks a raw query string: length, and no control byte in what it decodes to.
 * Returns 0, or -1 with *why (static). */
int reqcheck_query(const char *q, const char **why);
/* The route index for a decoded path (REQCHECK_N_ROUTES: none); *sub is the part after
 * a prefix route (borrowed from path, "" otherwise). */
size_t reqcheck_route(const char *path, const char **sub);
/* Parses a JSON object body. Returns it (new), or NULL with *code and msg. */
json_t *reqcheck_body_object(const char *b, size_t len, const char **code, char *msg,
    size_t msglen);
/* The model id in body's string field k (borrowed), or NULL with msg. */
const char *reqcheck_id_field(json_t *body, const char *k, char *msg, size_t msglen);
/* Reads the load options of body into o (its strings borrowed from body). Returns 0,
 * or -1 with msg. */
int reqcheck_load_opts(json_t *body, struct sched_opts *o, char *msg, size_t msglen);
/* Checks a /v1 request body. Returns it parsed (new) with its "model" in *model
 * (borrowed), or NULL with *code and msg (status 400). */
json_t *reqcheck_v1_body(const char *b, size_t len, const char **model, const char **code,
    char *msg, size_t msglen);
/* The same, where a body without "model" takes fallback (the query's model=, for
 * llama-server's own routes; NULL or "": none); *model may then be fallback. */
json_t *reqcheck_v1_body_or(const char *b, size_t len, const char *fallback,
    const char **model, const char **code, char *msg, size_t msglen);

#endif
