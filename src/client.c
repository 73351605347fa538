/*
 * client: HTTP client commands of mloffload (libcurl easy, one request per command,
 * bounded response size and time).
 */
#include "client.h"
#include "apikey.h"
#include "model.h"
#include "util.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RESPONSE (64u << 20)

static const char *cmds[] = { "status", "models", "vram", "scan", "budget" };

int client_is_command(const char *cmd)
{
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
		if (strcmp(cmd, cmds[i]) == 0)
			return 1;
	return 0;
}

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

/* Sends the request (with the header auth, or none); returns the parsed JSON (new) and
 * the status, or NULL with a message on stderr. */
static json_t *call(const char *base, const char *method, const char *path,
    const char *auth, long *status)
{
	CURL *c = curl_easy_init();
	struct buf b = { NULL, 0 };
	char *url = xasprintf("%s%s", base, path);
	struct curl_slist *h = auth ? curl_slist_append(NULL, auth) : NULL;
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (strcmp(method, "POST") == 0)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 600L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 5L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	CURLcode rc = curl_easy_perform(c);
	json_t *j = NULL;
	if (rc != CURLE_OK) {
		fprintf(stderr, "mloffload: %s: %s (is mloffloadd running? --url sets where)\n",
		    url, curl_easy_strerror(rc));
	} else {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
		json_error_t je;
		j = b.p ? json_loads(b.p, 0, &je) : NULL;
		if (j == NULL)
			fprintf(stderr, "mloffload: %s: the answer is not JSON\n", url);
	}
	free(url);
	free(b.p);
	curl_easy_cleanup(c);
	curl_slist_free_all(h);
	return j;
}

static const char *str(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "-";
}

static const char *size(json_t *o, const char *k, char *buf)
{
	json_t *v = json_object_get(o, k);
	if (!json_is_integer(v))
		return "-";
	return util_fmt_size((uint64_t)json_integer_value(v), buf, 32);
}

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

static void print_models(json_t *j)
{
	char a[32], b[32];
	size_t i;
	json_t *v;
	printf("%-32s %-9s %-10s %-8s %8s %10s %10s  %s\n", "id", "backend", "arch", "quant",
	    "params", "file", "needs", "fit");
	json_array_foreach(json_object_get(j, "models"), i, v) {
		char fit[64] = "-";
		json_t *f = json_array_get(json_object_get(v, "fit"), 0);
		if (f != NULL && json_is_string(json_object_get(f, "mode")))
			snprintf(fit, sizeof fit, "%s %s", str(f, "device"), str(f, "mode"));
		if (json_is_string(json_object_get(v, "error")))
			snprintf(fit, sizeof fit, "error: %.50s", str(v, "error"));
		printf("%-32.32s %-9s %-10.10s %-8.8s %8s %10s %10s  %s\n", str(v, "id"),
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
	json_t *v;
	json_array_foreach(json_object_get(p, "devices"), i, v)
		printf("  %-8s model %s, KV %s, compute %s, total %s\n", str(v, "name"),
		    size(v, "model_bytes", a), size(v, "kv_bytes", b), size(v, "compute_bytes", c),
		    size(v, "total_bytes", d));
	json_array_foreach(json_object_get(j, "would_evict"), i, v)
		printf("  would need room from %s %s (%s)\n", str(v, "kind"),
		    json_is_integer(json_object_get(v, "pid")) ? "process" : str(v, "model"),
		    size(v, "bytes", a));
}

static int usage(void)
{
	fprintf(stderr, "usage: mloffload [--url URL] [--api-key-file FILE] status|models|vram|"
	    "scan [--json]\n"
	    "       mloffload [--url URL] [--api-key-file FILE] budget MODEL [--ctx N] [--json]\n"
	    "  the key: --api-key-file, else $MLOFFLOAD_API_KEY\n");
	return 2;
}

int client_main(int argc, char **argv)
{
	const char *url = getenv("MLOFFLOAD_URL"), *cmd = NULL, *model = NULL, *keyfile = NULL;
	int json = 0;
	long long ctx = 0;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = 1;
		else if (strcmp(argv[i], "--url") == 0 && i + 1 < argc)
			url = argv[++i];
		else if (strcmp(argv[i], "--api-key-file") == 0 && i + 1 < argc)
			keyfile = argv[++i];
		else if (strcmp(argv[i], "--ctx") == 0 && i + 1 < argc) {
			if (util_parse_int(argv[++i], 1, MODEL_MAX_CTX, &ctx) < 0)
				return usage();
		} else if (cmd == NULL && client_is_command(argv[i]))
			cmd = argv[i];
		else if (cmd != NULL && strcmp(cmd, "budget") == 0 && model == NULL)
			model = argv[i];
		else
			return usage();
	}
	if (cmd == NULL || (strcmp(cmd, "budget") == 0) != (model != NULL))
		return usage();
	char *auth;
	if (auth_header(keyfile, &auth) < 0)
		return 1;
	if (url == NULL)
		url = "http://127.0.0.1:9000";
	char *base = xstrdup(url), *path;
	for (size_t n = strlen(base); n > 0 && base[n - 1] == '/'; n--)
		base[n - 1] = '\0';
	const char *method = "GET";
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (strcmp(cmd, "budget") == 0) {
		char *esc = curl_easy_escape(NULL, model, 0);
		if (esc == NULL) {
			fprintf(stderr, "mloffload: cannot encode the model id\n");
			free(base);
			free(auth);
			curl_global_cleanup();
			return 1;
		}
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
	json_t *j = call(base, method, path, auth, &status);
	if (auth != NULL)
		explicit_bzero(auth, strlen(auth));
	free(auth);
	curl_global_cleanup();
	free(path);
	free(base);
	if (j == NULL)
		return 1;
	int rc = status >= 200 && status < 300 ? 0 : 1;
	if (json || rc != 0) {
		if (rc != 0 && !json)
			fprintf(stderr, "mloffload: %s\n", str(json_object_get(j, "error"), "message"));
		else {
			char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
			puts(s ? s : "null");
			free(s);
		}
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
