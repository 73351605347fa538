/*
 * reqcheck: route table, path and query checks, body parsers (see reqcheck.h). Moved
 * out of api.c and proxy.c unchanged in behaviour, plus the control-byte checks.
 */
#include "reqcheck.h"
#include "model.h"
#include "plan.h"

#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const struct reqcheck_route reqcheck_routes[REQCHECK_N_ROUTES] = {
	{ "/", "/", EVHTTP_REQ_GET },
	{ "/health", "/health", EVHTTP_REQ_GET },
	{ "/backends", "/backends", EVHTTP_REQ_GET },
	{ "/models", "/models", EVHTTP_REQ_GET },
	{ "/models/scan", "/models/scan", EVHTTP_REQ_POST },
	{ "/models/", "/models/{id}", EVHTTP_REQ_GET },
	{ "/status", "/status", EVHTTP_REQ_GET },
	{ "/vram", "/vram", EVHTTP_REQ_GET },
	{ "/vram/budget", "/vram/budget", EVHTTP_REQ_GET },
	{ "/queue", "/queue", EVHTTP_REQ_GET },
	{ "/metrics", "/metrics", EVHTTP_REQ_GET },
	{ "/load", "/load", EVHTTP_REQ_POST },
	{ "/unload", "/unload", EVHTTP_REQ_POST },
	{ "/switch", "/switch", EVHTTP_REQ_POST },
	{ "/events", "/events", EVHTTP_REQ_GET },
	{ "/v1/models", "/v1/models", EVHTTP_REQ_GET },
	{ "/v1/chat/completions", "/v1/chat/completions", EVHTTP_REQ_POST },
	{ "/v1/completions", "/v1/completions", EVHTTP_REQ_POST },
	{ "/v1/embeddings", "/v1/embeddings", EVHTTP_REQ_POST },
	/* the other routes forwarded to a model (src/http/proxy_route.c) */
	{ "/v1/responses", "/v1/responses", EVHTTP_REQ_POST },
	{ "/v1/messages", "/v1/messages", EVHTTP_REQ_POST },
	{ "/v1/messages/count_tokens", "/v1/messages/count_tokens", EVHTTP_REQ_POST },
	{ "/v1/rerank", "/v1/rerank", EVHTTP_REQ_POST },
	{ "/rerank", "/rerank", EVHTTP_REQ_POST },
	{ "/infill", "/infill", EVHTTP_REQ_POST },
	{ "/tokenize", "/tokenize", EVHTTP_REQ_POST },
	{ "/detokenize", "/detokenize", EVHTTP_REQ_POST },
	{ "/apply-template", "/apply-template", EVHTTP_REQ_POST },
	{ "/v1/audio/transcriptions", "/v1/audio/transcriptions", EVHTTP_REQ_POST },
	{ "/ui", "/ui", EVHTTP_REQ_GET },
	{ "/ui/", "/ui/{file}", EVHTTP_REQ_GET },
	{ "/logs/", "/logs/{id}", EVHTTP_REQ_GET },
};

const char *reqcheck_method(int m)
{
	switch (m) {
	case EVHTTP_REQ_GET: return "GET";
	case EVHTTP_REQ_POST: return "POST";
	case EVHTTP_REQ_PUT: return "PUT";
	case EVHTTP_REQ_DELETE: return "DELETE";
	case EVHTTP_REQ_HEAD: return "HEAD";
	case EVHTTP_REQ_OPTIONS: return "OPTIONS";
	case EVHTTP_REQ_TRACE: return "TRACE";
	case EVHTTP_REQ_CONNECT: return "CONNECT";
	case EVHTTP_REQ_PATCH: return "PATCH";
	default: return "OTHER";
	}
}

/* 1 if s[0..len) holds a control byte (NUL included: a decoded %00 would cut the
 * string short, "/models/a%00b" naming model "a"). */
static int has_ctl(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 1;
	return 0;
}

int reqcheck_path(const char *raw, char **out, const char **why)
{
	size_t n = 0;
	*out = raw ? evhttp_uridecode(raw, 0, &n) : NULL;
	if (*out == NULL) {
		*why = "bad request path";
		return -1;
	}
	if (has_ctl(*out, n)) {
		free(*out);
		*out = NULL;
		*why = "the path has a control character";
		return -1;
	}
	return 0;
}

int reqcheck_query(const char *q, const char **why)
{
	if (q == NULL)
		return 0;
	if (strlen(q) > REQCHECK_MAX_QUERY) {
		*why = "query string longer than 2048 bytes";
		return -1;
	}
	/* decoded as evhttp_parse_query_str does ('+' a space): names and values */
	size_t n = 0;
	char *dq = evhttp_uridecode(q, 1, &n);
	int bad = dq == NULL || has_ctl(dq, n);
	free(dq);
	if (bad)
		*why = "the query has a control character";
	return bad ? -1 : 0;
}

size_t reqcheck_route(const char *path, const char **sub)
{
	*sub = "";
	for (size_t i = 0; i < REQCHECK_N_ROUTES; i++) {
		const char *p = reqcheck_routes[i].path;
		size_t l = strlen(p);
		if (strcmp(path, p) == 0)
			return i;
		if (l > 1 && p[l - 1] == '/' && strncmp(path, p, l) == 0 &&
		    strchr(path + l, '/') == NULL) {
			*sub = path + l;
			return i;
		}
	}
	return REQCHECK_N_ROUTES;
}

json_t *reqcheck_body_object(const char *b, size_t len, const char **code, char *msg,
    size_t msglen)
{
	json_error_t je;
	json_t *j = json_loadb(b ? b : "", len, 0, &je);
	if (j == NULL) {
		*code = "invalid_json";
		snprintf(msg, msglen, "body is not JSON: %s (line %d, column %d)", je.text, je.line,
		    je.column);
		return NULL;
	}
	if (!json_is_object(j)) {
		*code = "bad_request";
		snprintf(msg, msglen, "the body must be a JSON object");
		json_decref(j);
		return NULL;
	}
	return j;
}

const char *reqcheck_id_field(json_t *body, const char *k, char *msg, size_t msglen)
{
	const char *s = json_string_value(json_object_get(body, k));
	if (s == NULL || *s == '\0' || strlen(s) > REQCHECK_MAX_ID) {
		snprintf(msg, msglen, "\"%s\": a model id is required", k);
		return NULL;
	}
	return s;
}

/* One load option k=v into o. Returns 0, or -1 when k is unknown or v bad. */
static int load_opt(const char *k, json_t *v, struct sched_opts *o)
{
	if (strcmp(k, "model") == 0 || strcmp(k, "from") == 0 || strcmp(k, "to") == 0)
		return 0;
	if (strcmp(k, "ctx") == 0 && json_is_integer(v) && json_integer_value(v) >= 0 &&
	    json_integer_value(v) <= MODEL_MAX_CTX) {
		o->ctx = (uint32_t)json_integer_value(v);
	} else if (strcmp(k, "offload") == 0 && json_is_string(v) &&
	    (strcmp(json_string_value(v), "auto") == 0 ||
	    strcmp(json_string_value(v), "gpu") == 0 ||
	    strcmp(json_string_value(v), "cpu") == 0)) {
		o->offload = json_string_value(v)[0] == 'a' ? PLAN_AUTO :
		    json_string_value(v)[0] == 'g' ? PLAN_GPU : PLAN_CPU;
	} else if (strcmp(k, "cpu") == 0 && json_is_array(v) &&
	    json_array_size(v) <= PLAN_MAX_PATTERNS) {
		size_t i;
		json_t *p;
		json_array_foreach(v, i, p) {
			if (!json_is_string(p) || json_string_length(p) == 0 ||
			    json_string_length(p) > 200 ||
			    plan_check_pattern(json_string_value(p)) < 0)
				return -1;
			o->cpu_patterns[o->n_cpu_patterns++] = json_string_value(p);
		}
	} else if (strcmp(k, "pin") == 0 && json_is_boolean(v)) {
		o->pin = json_is_true(v);
	} else if (strcmp(k, "wait") == 0 && json_is_boolean(v)) {
		o->wait = json_is_true(v);
	} else if (strcmp(k, "ttl") == 0 && json_is_integer(v) && json_integer_value(v) >= 0 &&
	    json_integer_value(v) <= 30 * 86400) {
		o->ttl_s = (int)json_integer_value(v);
	} else if (strcmp(k, "priority") == 0 && json_is_integer(v) &&
	    json_integer_value(v) >= -1000 && json_integer_value(v) <= 1000) {
		o->priority = (int)json_integer_value(v);
	} else if (strcmp(k, "pressure_action") == 0 && json_is_string(v) &&
	    (strcmp(json_string_value(v), "shrink") == 0 ||
	    strcmp(json_string_value(v), "unload") == 0)) {
		o->pressure_action = json_string_value(v)[0] == 's' ? SCHED_PRESSURE_SHRINK :
		    SCHED_PRESSURE_UNLOAD;
	} else if (strcmp(k, "regrow") == 0 && json_is_boolean(v)) {
		o->regrow = json_is_true(v) ? 1 : -1;
	} else if (strcmp(k, "split") == 0 && json_is_string(v) &&
	    (strcmp(json_string_value(v), "auto") == 0 ||
	    strcmp(json_string_value(v), "never") == 0)) {
		o->split = json_string_value(v)[0] == 'a' ? 1 : -1;
	} else {
		return -1;
	}
	return 0;
}

int reqcheck_load_opts(json_t *body, struct sched_opts *o, char *msg, size_t msglen)
{
	memset(o, 0, sizeof *o);
	o->ttl_s = -1;
	o->wait = 1;
	const char *k;
	json_t *v;
	json_object_foreach(body, k, v) {
		if (load_opt(k, v, o) < 0) {
			snprintf(msg, msglen, "option '%s' is unknown or has a bad value (ctx, offload "
			    "auto|gpu|cpu, cpu [patterns], pin, wait, ttl, priority, "
			    "pressure_action shrink|unload, regrow, split auto|never)", k);
			return -1;
		}
	}
	return 0;
}

json_t *reqcheck_v1_body(const char *b, size_t len, const char **model, const char **code,
    char *msg, size_t msglen)
{
	return reqcheck_v1_body_or(b, len, NULL, model, code, msg, msglen);
}

json_t *reqcheck_v1_body_or(const char *b, size_t len, const char *fallback,
    const char **model, const char **code, char *msg, size_t msglen)
{
	json_error_t je;
	json_t *j = json_loadb(b ? b : "", len, 0, &je);
	*model = json_string_value(json_object_get(j, "model"));
	if ((*model == NULL || (*model)[0] == '\0') && fallback != NULL && fallback[0] != '\0')
		*model = fallback;
	if (j == NULL || !json_is_object(j)) {
		*code = "invalid_json";
		if (j != NULL)
			snprintf(msg, msglen, "the body is not a JSON object");
		else
			snprintf(msg, msglen, "the body is not JSON: %s (line %d, column %d)", je.text,
			    je.line, je.column);
	} else if (*model == NULL || (*model)[0] == '\0') {
		*code = "missing_model";
		snprintf(msg, msglen, "the body has no \"model\" string%s", fallback != NULL ?
		    " (nor the query a model=)" : "");
	} else if (json_object_get(j, "stream") != NULL &&
	    !json_is_boolean(json_object_get(j, "stream"))) {
		*code = "invalid_stream";
		snprintf(msg, msglen, "\"stream\" must be true or false");
	} else {
		return j;
	}
	json_decref(j);
	*model = NULL;
	return NULL;
}
