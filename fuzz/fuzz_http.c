/*
 * fuzz_http: libFuzzer harness for the daemon's request front. Each input is a raw
 * HTTP request: request line, headers, blank line, body. The request target goes
 * through libevent's URI parser as evhttp parses it (EVHTTP_URI_NONCONFORMANT), then
 * through the daemon's own checks in the order dispatch() runs them (reqcheck.c):
 * path decoding and its control-byte check, the query check, route matching, the
 * method check; then the query parameters the GET routes read, and the JSON body
 * parser of the route (load, unload and switch options, the /v1 request checks).
 * libevent's socket-level parsing of the request line and headers is not in the loop
 * (it needs a connection); tests/test_hostile.c drives that part over sockets. A
 * broken invariant aborts, which libFuzzer reports as a crash. Run it with fuzz/run.sh.
 */
#include "reqcheck.h"
#include "util.h"

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_http: invariant broken: %s\n", what);
		abort();
	}
}

/* evhttp's method names (http.c, evhttp_parse_request_line); 0 for others. */
static int method_of(const char *m)
{
	static const struct { const char *name; int type; } ms[] = {
		{ "GET", EVHTTP_REQ_GET }, { "POST", EVHTTP_REQ_POST },
		{ "HEAD", EVHTTP_REQ_HEAD }, { "PUT", EVHTTP_REQ_PUT },
		{ "DELETE", EVHTTP_REQ_DELETE }, { "OPTIONS", EVHTTP_REQ_OPTIONS },
		{ "TRACE", EVHTTP_REQ_TRACE }, { "CONNECT", EVHTTP_REQ_CONNECT },
		{ "PATCH", EVHTTP_REQ_PATCH },
	};
	for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++)
		if (strcmp(m, ms[i].name) == 0)
			return ms[i].type;
	return 0;
}

/* The query parameters /vram and /vram/budget read (api.c's query_param). */
static void query_params(const char *q)
{
	struct evkeyvalq kv;
	TAILQ_INIT(&kv);
	if (evhttp_parse_query_str(q, &kv) == 0) {
		static const char *const keys[] = { "history", "model", "ctx" };
		for (size_t i = 0; i < 3; i++) {
			const char *v = evhttp_find_header(&kv, keys[i]);
			long long n;
			if (v != NULL && strlen(v) < 16)
				(void)util_parse_int(v, 0, 100000, &n);
		}
	}
	evhttp_clear_headers(&kv);
}

static void body(const char *route, const char *b, size_t len)
{
	const char *code = NULL, *model = NULL;
	char msg[512];
	/* llama-server's own routes, forwarded too, may name the model in the query */
	int own = strcmp(route, "/rerank") == 0 || strcmp(route, "/infill") == 0 ||
	    strcmp(route, "/tokenize") == 0 || strcmp(route, "/detokenize") == 0 ||
	    strcmp(route, "/apply-template") == 0;
	if (own || (strncmp(route, "/v1/", 4) == 0 && strcmp(route, "/v1/models") != 0)) {
		json_t *j = reqcheck_v1_body_or(b, len, own ? "from-query" : NULL, &model, &code,
		    msg, sizeof msg);
		check(j != NULL ? model != NULL && model[0] != '\0' : code != NULL,
		    "v1 body: a model, or an error code");
		json_decref(j);
		return;
	}
	json_t *j = reqcheck_body_object(b, len, &code, msg, sizeof msg);
	check(j != NULL || code != NULL, "body: an object or an error code");
	if (j == NULL)
		return;
	check(json_is_object(j), "body: an object");
	int is_switch = strcmp(route, "/switch") == 0;
	const char *id = reqcheck_id_field(j, is_switch ? "from" : "model", msg, sizeof msg);
	check(id == NULL || (id[0] != '\0' && strlen(id) <= REQCHECK_MAX_ID), "id length");
	if (strcmp(route, "/load") == 0 || is_switch) {
		struct sched_opts o;
		if (reqcheck_load_opts(j, &o, msg, sizeof msg) == 0)
			check(o.n_cpu_patterns <= PLAN_MAX_PATTERNS && o.ctx <= (1u << 24) &&
			    o.ttl_s >= -1 && o.priority >= -1000 && o.priority <= 1000,
			    "load options in range");
		else
			check(msg[0] != '\0', "load options: a message");
	}
	json_decref(j);
}

static void request(char *line, const char *b, size_t blen)
{
	char *sp1 = strchr(line, ' '), *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	if (sp2 == NULL)
		return; /* evhttp answers 400 itself */
	*sp1 = *sp2 = '\0';
	int m = method_of(line);
	struct evhttp_uri *u = evhttp_uri_parse_with_flags(sp1 + 1, EVHTTP_URI_NONCONFORMANT);
	if (u == NULL || m == 0) {
		if (u != NULL) /* evhttp_uri_free(NULL) crashes */
			evhttp_uri_free(u);
		return;
	}
	const char *raw = evhttp_uri_get_path(u), *q = evhttp_uri_get_query(u), *why = NULL;
	char *path = NULL;
	if (reqcheck_path(raw, &path, &why) < 0 || reqcheck_query(q, &why) < 0) {
		check(why != NULL, "a refused path or query says why");
		goto out;
	}
	for (const char *p = path; *p; p++)
		check((unsigned char)*p >= 0x20 && *p != 0x7f, "no control byte in a path");
	const char *sub = NULL;
	size_t r = reqcheck_route(path, &sub);
	check(sub != NULL, "sub set");
	if (r == REQCHECK_N_ROUTES)
		goto out;
	const struct reqcheck_route *rt = &reqcheck_routes[r];
	check(strchr(sub, '/') == NULL, "sub is one segment");
	check(strncmp(path, rt->path, strlen(rt->path)) == 0, "route is a prefix of the path");
	check(reqcheck_method(m) != NULL && reqcheck_method(rt->methods) != NULL, "names");
	if (m == EVHTTP_REQ_HEAD && (rt->methods & EVHTTP_REQ_GET))
		m = EVHTTP_REQ_GET;
	if (!(m & rt->methods))
		goto out;
	if (q != NULL)
		query_params(q);
	if (rt->methods & EVHTTP_REQ_POST)
		body(rt->path, b, blen);
out:
	free(path);
	evhttp_uri_free(u);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* request line up to "\n" ("\r" dropped, as evhttp_readln with EOL_CRLF); the body
	 * after the first blank line */
	const uint8_t *nl = memchr(data, '\n', size);
	if (nl == NULL || memchr(data, '\0', (size_t)(nl - data)) != NULL)
		return 0;
	size_t ll = (size_t)(nl - data);
	char *line = malloc(ll + 1);
	memcpy(line, data, ll);
	line[ll] = '\0';
	if (ll > 0 && line[ll - 1] == '\r')
		line[ll - 1] = '\0';
	const uint8_t *b = data + size;
	for (size_t i = ll; i + 1 < size; i++) {
		if (data[i] != '\n')
			continue;
		if (data[i + 1] == '\n' || (i + 2 < size && data[i + 1] == '\r' &&
		    data[i + 2] == '\n')) {
			b = data + i + (data[i + 1] == '\n' ? 2 : 3);
			break;
		}
	}
	/* the body as evhttp hands it over (a copy: no terminating byte after it) */
	size_t blen = (size_t)(data + size - b);
	char *bc = malloc(blen ? blen : 1);
	memcpy(bc, b, blen);
	request(line, blen ? bc : NULL, blen);
	free(bc);
	free(line);
	return 0;
}
