/*
 * guard: the Host, Origin and API key checks of every request. See guard.h for what
 * is checked and README's "Security" for why. Decisions the issue left open:
 *  - Host's port is not compared (a rebinding page has a foreign host name whatever
 *    its port); an allowed_hosts entry with a port matches that port only.
 *  - An HTTP/1.1 request without Host (or with two) is a 400, as RFC 9112 asks; an
 *    HTTP/1.0 request without Host is served: browsers always send one, so it cannot
 *    come from a web page.
 *  - Listening on a wildcard address (0.0.0.0, ::), a Host that is an IP address is
 *    accepted: DNS rebinding needs a name, and such a request reached us by address.
 *  - An origin is the daemon's own when it is http://HOST:PORT with HOST allowed as a
 *    Host and PORT the listen port, or when its host and port are those of the Host
 *    header (a page served through a TLS proxy in front, https://name).
 *  - Every accepted origin gets Access-Control-Allow-Origin (its own value, never "*")
 *    and Vary: Origin; a preflight needs no key (browsers send none with it).
 */
#include "guard.h"
#include "apikey.h"
#include "config.h"
#include "util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <event2/http.h>
#include <event2/http_struct.h>
#include <event2/keyvalq_struct.h>
#include <sys/queue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HOST_LEN 256
#define ENV_KEY "MLOFFLOAD_API_KEY"

struct guard {
	const struct config *cfg;   /* borrowed */
	struct apikey_set *keys;
};

/* Copies host into out without IPv6 brackets, lowercased. */
static void bare_host(const char *host, char *out, size_t len)
{
	size_t n = strlen(host);
	if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
		host++;
		n -= 2;
	}
	if (n >= len)
		n = len - 1;
	for (size_t i = 0; i < n; i++)
		out[i] = (char)tolower((unsigned char)host[i]);
	out[n] = '\0';
}

static int is_ip(const char *h)
{
	unsigned char a[16];
	return inet_pton(AF_INET, h, a) == 1 || inet_pton(AF_INET6, h, a) == 1;
}

int guard_is_loopback(const char *host)
{
	char h[HOST_LEN];
	unsigned char a[16];
	bare_host(host, h, sizeof h);
	if (strcmp(h, "localhost") == 0)
		return 1;
	if (inet_pton(AF_INET, h, a) == 1)
		return a[0] == 127;
	return inet_pton(AF_INET6, h, a) == 1 && strcmp(h, "::1") == 0;
}

static int is_wildcard(const char *bare)
{
	return bare[0] == '\0' || strcmp(bare, "0.0.0.0") == 0 || strcmp(bare, "::") == 0;
}

/* Splits an authority "host", "host:port", "[v6]" or "[v6]:port" into host (no
 * brackets, lowercased) and port (0 when absent). Returns 0, or -1 when malformed. */
static int split_authority(const char *a, char *host, size_t hostlen, int *port)
{
	const char *end, *colon;
	*port = 0;
	if (a[0] == '[') {
		end = strchr(a, ']');
		if (end == NULL)
			return -1;
		colon = end[1] == ':' ? end + 1 : NULL;
		if (end[1] != '\0' && colon == NULL)
			return -1;
		end++;
	} else {
		colon = strchr(a, ':');
		if (colon != NULL && strchr(colon + 1, ':') != NULL)
			return -1;   /* a bare IPv6 address is not an authority */
		end = colon ? colon : a + strlen(a);
	}
	size_t n = (size_t)(end - a);
	if (n == 0 || n >= hostlen)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)a[i];
		if (!isalnum(ch) && ch != '.' && ch != '-' && ch != '_' &&
		    !(a[0] == '[' && (ch == ':' || ch == '[' || ch == ']')))
			return -1;
	}
	char raw[HOST_LEN];
	memcpy(raw, a, n);
	raw[n] = '\0';
	bare_host(raw, host, hostlen);
	if (colon != NULL) {
		long long p;
		if (util_parse_int(colon + 1, 1, 65535, &p) < 0)
			return -1;
		*port = (int)p;
	}
	return host[0] != '\0' ? 0 : -1;
}

struct origin {
	int https;
	char host[HOST_LEN];
	int port;                /* the scheme's default when absent */
};

/* Parses "http://authority" or "https://authority" (no path: browsers send none). */
static int split_origin(const char *o, struct origin *out)
{
	const char *a;
	if (strncasecmp(o, "http://", 7) == 0) {
		out->https = 0;
		a = o + 7;
	} else if (strncasecmp(o, "https://", 8) == 0) {
		out->https = 1;
		a = o + 8;
	} else {
		return -1;
	}
	if (split_authority(a, out->host, sizeof out->host, &out->port) < 0)
		return -1;
	if (out->port == 0)
		out->port = out->https ? 443 : 80;
	return 0;
}

static int host_ok(const struct config *c, const char *host, int port)
{
	char lh[HOST_LEN];
	bare_host(c->listen_host, lh, sizeof lh);
	int wild = is_wildcard(lh);
	if ((wild || guard_is_loopback(lh)) && (strcmp(host, "localhost") == 0 ||
	    strcmp(host, "127.0.0.1") == 0 || strcmp(host, "::1") == 0))
		return 1;
	if ((!wild && strcmp(host, lh) == 0) || (wild && is_ip(host)))
		return 1;
	for (size_t i = 0; i < c->n_allowed_hosts; i++) {
		char eh[HOST_LEN];
		int ep;
		if (split_authority(c->allowed_hosts[i], eh, sizeof eh, &ep) == 0 &&
		    strcmp(eh, host) == 0 && (ep == 0 || ep == port))
			return 1;
	}
	return 0;
}

static int origin_ok(const struct config *c, const char *origin, const char *host_hdr)
{
	struct origin o, e;
	if (split_origin(origin, &o) < 0)
		return 0;   /* "null" and anything malformed is foreign */
	for (size_t i = 0; i < c->n_allowed_origins; i++) {
		if (strcmp(c->allowed_origins[i], "*") == 0)
			return 1;
		if (split_origin(c->allowed_origins[i], &e) == 0 && e.https == o.https &&
		    e.port == o.port && strcmp(e.host, o.host) == 0)
			return 1;
	}
	if (!o.https && o.port == c->listen_port && host_ok(c, o.host, o.port))
		return 1;
	char hh[HOST_LEN];
	int hp;
	return host_hdr != NULL && split_authority(host_hdr, hh, sizeof hh, &hp) == 0 &&
	    strcmp(hh, o.host) == 0 && (hp ? hp : o.https ? 443 : 80) == o.port;
}

/* ---- configuration ---- */

/* The keys c names (its file, then the environment's); a new set, possibly empty, or
 * NULL with err. */
static struct apikey_set *load_keys(const struct config *c, char *err, size_t errlen)
{
	struct apikey_set *s = apikey_new();
	const char *env = getenv(ENV_KEY);
	if ((c->api_key_file != NULL && apikey_read_file(s, c->api_key_file, err, errlen) < 0) ||
	    (env != NULL && *env != '\0' && apikey_add(s, env, ENV_KEY, err, errlen) < 0)) {
		apikey_free(s);
		return NULL;
	}
	return s;
}

int guard_check_config(const struct config *c, char *err, size_t errlen)
{
	char h[HOST_LEN];
	int p, star = 0;
	struct origin o;
	for (size_t i = 0; i < c->n_allowed_hosts; i++) {
		if (split_authority(c->allowed_hosts[i], h, sizeof h, &p) < 0) {
			snprintf(err, errlen, "allowed_hosts: '%s' is not a host name or address "
			    "(with an optional :PORT)", c->allowed_hosts[i]);
			return -1;
		}
	}
	for (size_t i = 0; i < c->n_allowed_origins; i++) {
		const char *v = c->allowed_origins[i];
		star |= strcmp(v, "*") == 0;
		if (strcmp(v, "*") != 0 && split_origin(v, &o) < 0) {
			snprintf(err, errlen, "allowed_origins: '%s' is not an origin like "
			    "https://host[:port] (no path) or *", v);
			return -1;
		}
	}
	struct apikey_set *s = load_keys(c, err, errlen);
	if (s == NULL)
		return -1;
	size_t n = apikey_count(s);
	apikey_free(s);
	if (n == 0 && !guard_is_loopback(c->listen_host)) {
		snprintf(err, errlen, "listening on %s (not loopback) needs an API key: set "
		    "api_key_file or %s (README: Security)", c->listen_host, ENV_KEY);
		return -1;
	}
	if (n == 0 && star) {
		snprintf(err, errlen, "allowed_origins = * needs an API key: set api_key_file or "
		    "%s (README: Security)", ENV_KEY);
		return -1;
	}
	return 0;
}

struct guard *guard_new(const struct config *c, char *err, size_t errlen)
{
	struct apikey_set *s = load_keys(c, err, errlen);
	if (s == NULL)
		return NULL;
	struct guard *g = xcalloc(1, sizeof *g);
	g->cfg = c;
	g->keys = s;
	return g;
}

int guard_reload(struct guard *g, char *err, size_t errlen)
{
	struct apikey_set *s = load_keys(g->cfg, err, errlen);
	if (s == NULL)
		return -1;
	apikey_free(g->keys);
	g->keys = s;
	return 0;
}

size_t guard_key_count(const struct guard *g)
{
	return apikey_count(g->keys);
}

void guard_free(struct guard *g)
{
	if (g == NULL)
		return;
	apikey_free(g->keys);
	free(g);
}

/* ---- requests ---- */

/* Fills v with a refusal; returns its status. */
static int refuse(struct guard_verdict *v, int status, const char *code, const char *what,
    const char *value, const char *hint)
{
	v->status = status;
	v->code = code;
	if (what != NULL)
		snprintf(v->message, sizeof v->message, "%s '%.200s' %s", what, value ? value : "",
		    hint);
	else
		snprintf(v->message, sizeof v->message, "%s", hint);
	return status;
}

/* The Host check: 0, or the status of the refusal in v. */
static int check_host(const struct config *c, struct evhttp_request *req, const char *host,
    int n_host, struct guard_verdict *v)
{
	char h[HOST_LEN];
	int port;
	if (n_host > 1)
		return refuse(v, 400, "bad_request", "Host", host, "comes more than once");
	if (n_host == 0 && req->major == 1 && req->minor >= 1)
		return refuse(v, 400, "bad_request", NULL, NULL, "the Host header is missing "
		    "(HTTP/1.1 needs it)");
	if (host != NULL && (split_authority(host, h, sizeof h, &port) < 0 ||
	    !host_ok(c, h, port)))
		return refuse(v, 403, "forbidden_host", "Host", host, "does not name this daemon "
		    "(allowed_hosts lists more names)");
	/* an absolute request target ("GET http://name/ HTTP/1.1") names a host too */
	const char *uh = evhttp_uri_get_host(evhttp_request_get_evhttp_uri(req));
	int up = evhttp_uri_get_port(evhttp_request_get_evhttp_uri(req));
	if (uh != NULL) {
		bare_host(uh, h, sizeof h);
		if (!host_ok(c, h, up > 0 ? up : 0))
			return refuse(v, 403, "forbidden_host", "host", uh, "does not name this "
			    "daemon (allowed_hosts lists more names)");
	}
	return 0;
}

static void cors_headers(struct evhttp_request *req, const char *origin)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);
	evhttp_add_header(out, "Access-Control-Allow-Origin", origin);
	evhttp_add_header(out, "Vary", "Origin");
	evhttp_add_header(out, "Access-Control-Expose-Headers", "Retry-After, WWW-Authenticate");
}

/* The headers of the answer to a CORS preflight for a route serving methods (the
 * caller sends the 204). */
static int preflight(struct evhttp_request *req, int methods, const char *asked,
    struct guard_verdict *v)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);
	char m[64] = "", hdrs[512] = "Authorization, Content-Type, X-Api-Key, Last-Event-ID";
	snprintf(m, sizeof m, "%s%s%s", methods & EVHTTP_REQ_GET ? "GET, HEAD" : "",
	    (methods & EVHTTP_REQ_GET) && (methods & EVHTTP_REQ_POST) ? ", " : "",
	    methods & EVHTTP_REQ_POST ? "POST" : "");
	/* headers the page asks for are granted when they look like header names */
	size_t n = asked ? strlen(asked) : 0;
	int plain = n > 0 && n < 256;
	for (size_t i = 0; plain && i < n; i++)
		plain = isalnum((unsigned char)asked[i]) || strchr("-_, ", asked[i]) != NULL;
	if (plain)
		snprintf(hdrs + strlen(hdrs), sizeof hdrs - strlen(hdrs), ", %s", asked);
	evhttp_add_header(out, "Access-Control-Allow-Methods", m);
	evhttp_add_header(out, "Access-Control-Allow-Headers", hdrs);
	evhttp_add_header(out, "Access-Control-Max-Age", "600");
	return refuse(v, 204, NULL, NULL, NULL, "");
}

/* 1 when the request carries one of the keys. Both headers are compared, each in
 * constant time. */
static int key_ok(const struct guard *g, struct evkeyvalq *in)
{
	const char *auth = evhttp_find_header(in, "Authorization");
	const char *xk = evhttp_find_header(in, "X-Api-Key");
	int ok = 0;
	if (auth != NULL && strncasecmp(auth, "Bearer ", 7) == 0) {
		const char *k = auth + 7;
		while (*k == ' ')
			k++;
		size_t n = strlen(k);
		while (n > 0 && k[n - 1] == ' ')
			n--;
		ok |= apikey_match(g->keys, k, n);
	}
	if (xk != NULL)
		ok |= apikey_match(g->keys, xk, strlen(xk));
	return ok;
}

int guard_request(struct guard *g, struct evhttp_request *req, int methods, int open,
    struct guard_verdict *v)
{
	struct evkeyvalq *in = evhttp_request_get_input_headers(req);
	const char *host = NULL, *origin = NULL;
	int n_host = 0, n_origin = 0, st;
	struct evkeyval *h;
	TAILQ_FOREACH(h, in, next) {
		if (strcasecmp(h->key, "Host") == 0 && n_host++ == 0)
			host = h->value;
		else if (strcasecmp(h->key, "Origin") == 0 && n_origin++ == 0)
			origin = h->value;
	}
	memset(v, 0, sizeof *v);
	if ((st = check_host(g->cfg, req, host, n_host, v)) != 0)
		return st;
	if (n_origin > 0) {
		if (n_origin > 1 || !origin_ok(g->cfg, origin, host))
			return refuse(v, 403, "forbidden_origin", "Origin", origin, "may not use "
			    "this daemon (allowed_origins lists the web pages that may)");
		cors_headers(req, origin);
		const char *asked = evhttp_find_header(in, "Access-Control-Request-Method");
		if (evhttp_request_get_command(req) == EVHTTP_REQ_OPTIONS && asked != NULL)
			return methods == 0 ? 0 : preflight(req, methods,
			    evhttp_find_header(in, "Access-Control-Request-Headers"), v);
	}
	if (open || apikey_count(g->keys) == 0 || key_ok(g, in))
		return 0;
	int sent = evhttp_find_header(in, "Authorization") != NULL ||
	    evhttp_find_header(in, "X-Api-Key") != NULL;
	evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
	    "Bearer realm=\"mloffloadd\"");
	return refuse(v, 401, "invalid_api_key", NULL, NULL, sent ? "the API key is not valid" :
	    "an API key is needed: send \"Authorization: Bearer KEY\" or \"x-api-key: KEY\"");
}
