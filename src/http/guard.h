/*
 * guard: who may talk to mloffloadd, checked for every request before any work is
 * done (api.c's dispatch calls guard_request once). Three checks, in this order:
 *   Host    names this daemon (loopback names, the listen address, allowed_hosts), so
 *           that a web page cannot reach it through DNS rebinding;
 *   Origin  when a browser sends one, it is the daemon's own or in allowed_origins, so
 *           that a web page cannot make the daemon act (CSRF); listed origins get CORS
 *           answers, preflights included;
 *   key     with API keys configured (api_key_file, $MLOFFLOAD_API_KEY), every route
 *           but /health needs "Authorization: Bearer KEY" or "x-api-key: KEY".
 * The configuration side (guard_check_config) refuses what would be unsafe: listening
 * beyond loopback without a key, allowed_origins "*" without a key, a key file other
 * users can read. README's "Security" section says the same for users.
 * The guard answers nothing itself: it returns a verdict and adds the headers that go
 * with it (CORS, WWW-Authenticate); the caller sends the answer (reply.h).
 */
#ifndef MLO_GUARD_H
#define MLO_GUARD_H

#include <stddef.h>

struct config;
struct evhttp_request;
struct guard;

/* Checks the security settings of c (syntax of allowed_hosts and allowed_origins, the
 * key file and $MLOFFLOAD_API_KEY, and that listening beyond loopback or allowing
 * every origin comes with a key). Returns 0, or -1 with a one-line reason in err. */
int guard_check_config(const struct config *c, char *err, size_t errlen);
/* 1 when host (a listen host: name or address, IPv6 with or without brackets) is a
 * loopback one: localhost, 127.0.0.0/8, ::1. */
int guard_is_loopback(const char *host);
/* A guard reading its settings from c (borrowed: it must outlive the guard, and its
 * lists may be replaced between requests) with the keys read now. Returns it, or NULL
 * with err when the keys cannot be read. */
struct guard *guard_new(const struct config *c, char *err, size_t errlen);
/* Reads the keys again (SIGHUP). Returns 0, or -1 with err, keeping the old keys. */
int guard_reload(struct guard *g, char *err, size_t errlen);
/* Keys in force (0: no key needed). */
size_t guard_key_count(const struct guard *g);
void guard_free(struct guard *g);
/* A refusal: what the caller answers (code and message for the error envelope). */
struct guard_verdict {
	int status;            /* 0: go on */
	const char *code;      /* static; NULL for 204 */
	char message[512];
};
/* Checks req. methods: its route's EVHTTP_REQ_* (0 for no route), open: 1 for a route
 * served without a key (/health). Returns 0 when the request may go on (with the CORS
 * headers for its origin added to the answer), else v->status, the answer the caller
 * owes: 400 (no or several Host headers on HTTP/1.1), 403 (Host or Origin refused),
 * 401 (key missing or wrong, WWW-Authenticate added), 204 (a CORS preflight: its
 * headers added, the caller sends it with no body). */
int guard_request(struct guard *g, struct evhttp_request *req, int methods, int open,
    struct guard_verdict *v);

#endif
