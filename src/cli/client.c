/*
 * client: HTTP client commands of mloffload: one libcurl easy request per plain
 * command (bounded response size and time), and streams on one libcurl multi handle
 * for the commands that follow the daemon (load's progress, events, logs, run).
 */
#include "client.h"
#include "apikey.h"
#include "model.h"
#include "util.h"

#include <ctype.h>
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RESPONSE (64u << 20)


struct buf {
	char *p;
	size_t len;
};

static size_t on_data(char *ptr, size_t size, size_t n, void *arg)
{
	struct buf *b = arg;
	size_t add = size * n;
	if (b->len + add > MAX_RESPONSE)
		return 0;
	b->p = xrealloc(b->p, b->len + add + 1);
	memcpy(b->p + b->len, ptr, add);
	b->len += add;
	b->p[b->len] = '\0';
	return add;
}

/* The key to send: the first of --api-key-file FILE, else $MLOFFLOAD_API_KEY, else
 * none. Returns 0 with a heap "Authorization: Bearer KEY" header (or NULL) in *hdr, or
 * -1 after a message on stderr. */
static int auth_header(const char *file, char **hdr)
{
	char err[1024];
	const char *env = getenv("MLOFFLOAD_API_KEY");
	*hdr = NULL;
	if (file == NULL && (env == NULL || *env == '\0'))
		return 0;
	struct apikey_set *s = apikey_new();
	int rc = file ? apikey_read_file(s, file, err, sizeof err) :
	    apikey_add(s, env, "MLOFFLOAD_API_KEY", err, sizeof err);
	if (rc < 0)
		fprintf(stderr, "mloffload: %s\n", err);
	else
		*hdr = xasprintf("Authorization: Bearer %s", apikey_get(s, 0));
	apikey_free(s);
	return rc;
}

/* A configured easy handle for method url (body may be NULL); *h holds its headers. */
static CURL *easy(const struct client *c, const char *method, const char *path,
    const char *body, const char *extra, struct curl_slist **h, char **url)
{
	CURL *e = curl_easy_init();
	*url = xasprintf("%s%s", c->base, path);
	*h = c->auth ? curl_slist_append(NULL, c->auth) : NULL;
	if (body != NULL)
		*h = curl_slist_append(*h, "Content-Type: application/json");
	if (extra != NULL)
		*h = curl_slist_append(*h, extra);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, *h);
	curl_easy_setopt(e, CURLOPT_URL, *url);
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	if (strcmp(method, "POST") == 0)
		curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, body ? body : "");
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, 5L);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	return e;
}

json_t *client_call(const struct client *c, const char *method, const char *path,
    const char *body, long *status)
{
	struct buf b = { NULL, 0 };
	struct curl_slist *h;
	char *url;
	CURL *e = easy(c, method, path, body, NULL, &h, &url);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(e, CURLOPT_TIMEOUT, 600L);
	CURLcode rc = curl_easy_perform(e);
	json_t *j = NULL;
	if (rc != CURLE_OK) {
		fprintf(stderr, "mloffload: %s: %s (is mloffloadd running? --url sets where)\n",
		    url, curl_easy_strerror(rc));
	} else {
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, status);
		json_error_t je;
		j = b.p ? json_loads(b.p, 0, &je) : NULL;
		if (j == NULL)
			fprintf(stderr, "mloffload: %s: the answer (%ld) is not JSON\n", url, *status);
	}
	free(url);
	free(b.p);
	curl_easy_cleanup(e);
	curl_slist_free_all(h);
	return j;
}

const char *client_error(json_t *j)
{
	const char *m = json_string_value(json_object_get(json_object_get(j, "error"),
	    "message"));
	return m ? m : "the daemon answered an error";
}

int client_print_json(json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(j);
	if (s == NULL)
		return 1;
	puts(s);
	free(s);
	return 0;
}

/* ---- streams (one curl multi handle for the process) ---- */

struct client_stream {
	CURL *e;
	struct curl_slist *h;
	char *url;
	client_data_fn fn;
	void *arg;
	int done, stopped;
	CURLcode rc;
};

static CURLM *multi;

static size_t on_stream(char *p, size_t size, size_t n, void *arg)
{
	struct client_stream *s = arg;
	if (s->fn(p, size * n, s->arg) != 0) {
		s->stopped = 1;
		return 0;
	}
	return size * n;
}

struct client_stream *client_stream_new(const struct client *c, const char *method,
    const char *path, const char *body, const char *extra, client_data_fn fn, void *arg)
{
	if (multi == NULL && (multi = curl_multi_init()) == NULL)
		return NULL;
	struct client_stream *s = xcalloc(1, sizeof *s);
	s->e = easy(c, method, path, body, extra, &s->h, &s->url);
	s->fn = fn;
	s->arg = arg;
	curl_easy_setopt(s->e, CURLOPT_WRITEFUNCTION, on_stream);
	curl_easy_setopt(s->e, CURLOPT_WRITEDATA, s);
	curl_easy_setopt(s->e, CURLOPT_PRIVATE, s);
	curl_multi_add_handle(multi, s->e);
	return s;
}

int client_stream_poll(struct client_stream **s, int ms)
{
	int running;
	curl_multi_perform(multi, &running);
	curl_multi_poll(multi, NULL, 0, ms, NULL);
	curl_multi_perform(multi, &running);
	CURLMsg *m;
	while ((m = curl_multi_info_read(multi, &running)) != NULL) {
		if (m->msg != CURLMSG_DONE)
			continue;
		struct client_stream *d;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&d);
		d->done = 1;
		d->rc = m->data.result;
	}
	int n = 0;
	for (size_t i = 0; s[i] != NULL; i++)
		n += !s[i]->done;
	return n;
}

long client_stream_status(const struct client_stream *s)
{
	long st = 0;
	curl_easy_getinfo(s->e, CURLINFO_RESPONSE_CODE, &st);
	return st;
}

int client_stream_done(const struct client_stream *s)
{
	return s->done;
}

const char *client_stream_error(const struct client_stream *s)
{
	return s->done && s->rc != CURLE_OK && !s->stopped ? curl_easy_strerror(s->rc) : NULL;
}

void client_stream_free(struct client_stream *s)
{
	if (s == NULL)
		return;
	curl_multi_remove_handle(multi, s->e);
	curl_easy_cleanup(s->e);
	curl_slist_free_all(s->h);
	free(s->url);
	free(s);
}

long client_stream_run(const struct client *c, const char *method, const char *path,
    const char *body, const char *extra, client_data_fn fn, void *arg)
{
	struct client_stream *s = client_stream_new(c, method, path, body, extra, fn, arg);
	struct client_stream *all[] = { s, NULL };
	while (s != NULL && client_stream_poll(all, 1000) > 0)
		;
	long st = s ? client_stream_status(s) : 0;
	const char *err = s ? client_stream_error(s) : "cannot start curl";
	if (err != NULL && st == 0)
		fprintf(stderr, "mloffload: %s%s: %s (is mloffloadd running? --url sets where)\n",
		    c->base, path, err);
	client_stream_free(s);
	return st;
}

static const char *str(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "-";
}

const char *client_size(json_t *o, const char *k, char *buf)
{
	json_t *v = json_object_get(o, k);
	if (!json_is_integer(v))
		return "-";
	return util_fmt_size((uint64_t)json_integer_value(v), buf, 32);
}
#define size client_size

static void print_devices(json_t *devs)
{
	char a[32], b[32], c[32];
	size_t i;
	json_t *v;
	printf("%-6s %-40s %12s %12s %12s\n", "device", "name", "total", "used", "free");
	json_array_foreach(devs, i, v)
		printf("%-6s %-40.40s %12s %12s %12s%s\n", str(v, "id"), str(v, "name"),
		    size(v, "total_bytes", a), size(v, "used_bytes", b), size(v, "free_bytes", c),
		    json_is_false(json_object_get(v, "ok")) ? "  (not read)" : "");
}

static void print_status(json_t *j)
{
	printf("mloffloadd %s, up %llds, %s\n", str(j, "version"),
	    (long long)json_integer_value(json_object_get(j, "uptime_s")), str(j, "nvml"));
	print_devices(json_object_get(j, "devices"));
	json_t *m = json_object_get(j, "models");
	printf("models: %lld available, %lld with errors; queue %lld\n",
	    (long long)json_integer_value(json_object_get(m, "available")),
	    (long long)json_integer_value(json_object_get(m, "error")),
	    (long long)json_integer_value(json_object_get(j, "queue_depth")));
}

/* Where model v would run, in words: "GPU0 28/33 layers", "CPU", "does not fit". */
static void fit_words(json_t *v, char *out, size_t len)
{
	json_t *fit = json_object_get(v, "fit"), *f;
	size_t i;
	if (json_is_string(json_object_get(v, "error"))) {
		snprintf(out, len, "error: %.60s", str(v, "error"));
		return;
	}
	json_array_foreach(fit, i, f) {
		const char *dev = str(f, "device");
		if (strcmp(dev, "cpu") != 0 && json_is_true(json_object_get(f, "fits")) &&
		    json_integer_value(json_object_get(f, "gpu_layers")) > 0) {
			char up[64];
			size_t k;
			for (k = 0; dev[k] != '\0' && k < sizeof up - 1; k++)
				up[k] = (char)toupper((unsigned char)dev[k]);
			up[k] = '\0';
			snprintf(out, len, "%s %lld/%lld layers", up,
			    (long long)json_integer_value(json_object_get(f, "gpu_layers")),
			    (long long)json_integer_value(json_object_get(f, "layers")));
			return;
		}
	}
	json_array_foreach(fit, i, f) {
		if (strcmp(str(f, "device"), "cpu") == 0 && json_is_true(json_object_get(f, "fits"))) {
			snprintf(out, len, "CPU");
			return;
		}
	}
	snprintf(out, len, "%s", json_array_size(fit) > 0 ? "does not fit" : "-");
}

static void print_models(json_t *j)
{
	char a[32], b[32], fit[96];
	size_t i;
	json_t *v;
	int w = 2;   /* the id column as wide as the longest id */
	json_array_foreach(json_object_get(j, "models"), i, v)
		if ((int)strlen(str(v, "id")) > w)
			w = (int)strlen(str(v, "id"));
	if (w > 80)
		w = 80;
	printf("%-*s  %-9s %-10s %-8s %8s %10s %10s  %s\n", w, "id", "backend", "arch", "quant",
	    "params", "file", "needs", "fit");
	json_array_foreach(json_object_get(j, "models"), i, v) {
		fit_words(v, fit, sizeof fit);
		printf("%-*.*s  %-9s %-10.10s %-8.8s %8s %10s %10s  %s\n", w, w, str(v, "id"),
		    str(v, "backend"), str(v, "arch"), str(v, "quantization"),
		    str(v, "parameters_label"), size(v, "file_bytes", a),
		    size(json_object_get(v, "estimate"), "total_bytes", b), fit);
	}
}

static void print_budget(json_t *j)
{
	char a[32], b[32], c[32], d[32];
	json_t *p = json_object_get(j, "plan");
	printf("%s at context %lld: %s, %lld of %lld layers on the device\n", str(j, "model"),
	    (long long)json_integer_value(json_object_get(j, "ctx")),
	    json_is_true(json_object_get(j, "fits")) ? "fits" : "does not fit",
	    (long long)json_integer_value(json_object_get(p, "gpu_layers")),
	    (long long)json_integer_value(json_object_get(p, "layers")));
	size_t i;
	json_t *v, *dv = json_object_get(j, "device"), *lo = json_object_get(j, "learned_overhead");
	if (json_is_object(dv))
		printf("  %-8s budget %s of %s\n", str(dv, "id"), size(dv, "budget_bytes", a),
		    size(dv, "total_bytes", b));
	if (json_is_object(dv) && json_is_object(lo))
		printf("  %-8s learned overhead %s (CUDA context, workspaces; %lld load%s "
		    "seen), taken from the budget\n", str(dv, "id"), size(lo, "bytes", a),
		    (long long)json_integer_value(json_object_get(lo, "loads")),
		    json_integer_value(json_object_get(lo, "loads")) == 1 ? "" : "s");
	/* every device of the plan (a split: each of them), then the CPU */
	json_array_foreach(json_object_get(p, "devices"), i, v) {
		char e[32];
		printf("  %-8s model %s, KV %s, compute %s, total %s", str(v, "name"),
		    size(v, "model_bytes", a), size(v, "kv_bytes", b), size(v, "compute_bytes", c),
		    size(v, "total_bytes", d));
		if (json_is_integer(json_object_get(v, "budget_bytes")))
			printf(" of %s", size(v, "budget_bytes", e));
		printf("%s\n", json_is_true(json_object_get(v, "output")) ? " (output)" : "");
	}
	if (json_is_string(json_object_get(j, "reason")))
		printf("  %s\n", str(j, "reason"));
	json_array_foreach(json_object_get(j, "would_evict"), i, v)
		printf("  would need room from %s %s (%s)\n", str(v, "kind"),
		    json_is_integer(json_object_get(v, "pid")) ? "process" : str(v, "model"),
		    size(v, "bytes", a));
}

static int usage(FILE *f)
{
	fprintf(f, "usage: mloffload [--url URL] [--api-key-file FILE] COMMAND [--json]\n"
	    "  status | models | vram | scan       the daemon's state\n"
	    "  budget MODEL [--ctx N]              the plan a load would get\n"
	    "  ps                                  loaded models, where and how much\n"
	    "  load MODEL [--ctx N] [--offload auto|gpu|cpu] [--pin] [--ttl S] [--no-wait]\n"
	    "  unload MODEL\n"
	    "  switch FROM TO [--ctx N] [--offload M]\n"
	    "  run MODEL [PROMPT]                  chat; no PROMPT: interactive (/bye ends)\n"
	    "  events [--follow] [--type T]\n"
	    "  logs MODEL [--follow] [--tail BYTES]\n"
	    "  (COMMAND --help says more; the URL: --url, else $MLOFFLOAD_URL, else\n"
	    "   http://127.0.0.1:9000; the key: --api-key-file, else $MLOFFLOAD_API_KEY)\n");
	return 2;
}

/* status, models, vram, scan, budget. */
static int basic(const struct client *c, int argc, char **argv)
{
	const char *cmd = argv[0], *model = NULL, *method = "GET";
	int json = 0;
	long long ctx = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = 1;
		else if (strcmp(argv[i], "--help") == 0)
			return usage(stdout), 0;
		else if (strcmp(argv[i], "--ctx") == 0 && i + 1 < argc) {
			if (util_parse_int(argv[++i], 1, MODEL_MAX_CTX, &ctx) < 0)
				return usage(stderr);
		} else if (strcmp(cmd, "budget") == 0 && model == NULL && argv[i][0] != '-')
			model = argv[i];
		else
			return usage(stderr);
	}
	if ((strcmp(cmd, "budget") == 0) != (model != NULL))
		return usage(stderr);
	char *path;
	if (model != NULL) {
		char *esc = curl_easy_escape(NULL, model, 0);
		path = ctx ? xasprintf("/vram/budget?model=%s&ctx=%lld", esc, ctx) :
		    xasprintf("/vram/budget?model=%s", esc);
		curl_free(esc);
	} else if (strcmp(cmd, "scan") == 0) {
		path = xstrdup("/models/scan");
		method = "POST";
	} else {
		path = xasprintf("/%s", cmd);
	}
	long status = 0;
	json_t *j = client_call(c, method, path, NULL, &status);
	free(path);
	if (j == NULL)
		return 1;
	int rc = status >= 200 && status < 300 ? 0 : 1;
	if (rc != 0 && !json) {
		fprintf(stderr, "mloffload: %s\n", client_error(j));
	} else if (json) {
		client_print_json(json_incref(j));
	} else if (strcmp(cmd, "status") == 0) {
		print_status(j);
	} else if (strcmp(cmd, "models") == 0) {
		print_models(j);
	} else if (strcmp(cmd, "vram") == 0) {
		print_devices(json_object_get(j, "devices"));
	} else if (strcmp(cmd, "scan") == 0) {
		printf("scan: %lld added, %lld updated, %lld removed, %lld unchanged, %lld errors\n",
		    (long long)json_integer_value(json_object_get(j, "added")),
		    (long long)json_integer_value(json_object_get(j, "updated")),
		    (long long)json_integer_value(json_object_get(j, "removed")),
		    (long long)json_integer_value(json_object_get(j, "unchanged")),
		    (long long)json_integer_value(json_object_get(j, "errors")));
	} else {
		print_budget(j);
	}
	json_decref(j);
	return rc;
}

int client_main(int argc, char **argv)
{
	const char *url = getenv("MLOFFLOAD_URL"), *keyfile = NULL;
	/* --url and --api-key-file may come before or after the command */
	char **rest = xcalloc((size_t)argc + 1, sizeof *rest);
	int n = 0;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--url") == 0 && i + 1 < argc)
			url = argv[++i];
		else if (strcmp(argv[i], "--api-key-file") == 0 && i + 1 < argc)
			keyfile = argv[++i];
		else
			rest[n++] = argv[i];
	}
	if (n == 0 || !client_is_command(rest[0])) {
		free(rest);
		return usage(stderr);
	}
	struct client c = { NULL, NULL };
	if (auth_header(keyfile, &c.auth) < 0) {
		free(rest);
		return 1;
	}
	c.base = xstrdup(url && *url ? url : "http://127.0.0.1:9000");
	for (size_t k = strlen(c.base); k > 0 && c.base[k - 1] == '/'; k--)
		c.base[k - 1] = '\0';
	curl_global_init(CURL_GLOBAL_DEFAULT);
	static const struct { const char *name; int (*fn)(const struct client *, int, char **); }
	    more[] = { { "ps", cli_daemon_ps }, { "load", cli_daemon_load },
	    { "unload", cli_daemon_unload }, { "switch", cli_daemon_switch },
	    { "events", cli_daemon_events }, { "logs", cli_daemon_logs }, { "run", cli_run } };
	int rc = -1;
	for (size_t i = 0; i < sizeof more / sizeof more[0] && rc < 0; i++)
		if (strcmp(rest[0], more[i].name) == 0)
			rc = more[i].fn(&c, n, rest);
	if (rc < 0)
		rc = basic(&c, n, rest);
	if (multi != NULL)
		curl_multi_cleanup(multi);
	multi = NULL;
	curl_global_cleanup();
	if (c.auth != NULL)
		explicit_bzero(c.auth, strlen(c.auth));
	free(c.auth);
	free(c.base);
	free(rest);
	return rc;
}
