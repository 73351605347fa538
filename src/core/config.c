/*
 * config: defaults, INI file and flags for mloffloadd. The INI dialect is the usual
 * one: [section], key = value, # or ; comments, repeatable keys for lists (a list
 * given in a later source replaces the earlier one). Unknown sections and keys are
 * errors, so a typo never passes silently.
 */
#include "config.h"
#include "model.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LINE_MAX_LEN 4096
#define CONFIG_MAX_FILE (1u << 20) /* a config file is small; this is no INI of any use */

static char *home_path(const char *env, const char *fallback, const char *tail)
{
	const char *v = getenv(env);
	if (v != NULL && *v != '\0')
		return xasprintf("%s/%s", v, tail);
	const char *home = getenv("HOME");
	return xasprintf("%s/%s/%s", home ? home : "/tmp", fallback, tail);
}

void config_defaults(struct config *c)
{
	memset(c, 0, sizeof *c);
	c->listen_host = xstrdup("127.0.0.1");
	c->listen_port = 9000;
	const char *sd = getenv("STATE_DIRECTORY"); /* set by systemd's StateDirectory= */
	c->state_dir = sd && *sd ? xstrdup(sd) : home_path("XDG_STATE_HOME", ".local/state",
	    "mloffload");
	c->models_dirs[c->n_models_dirs++] = home_path("XDG_DATA_HOME", ".local/share",
	    "mloffload/models");
	c->sysfs_root = xstrdup("/sys");
	c->log_level = LOG_LVL_INFO;
	c->sample_interval_ms = 500;
	c->history = 120;
	c->rescan_interval_s = 60;
	c->discover_interval_s = 10;
	c->scan_ctx = 0;
	c->reserve = 512ull << 20;
	c->max_body = 1ull << 20;
	c->header_timeout_s = 30;
	c->body_timeout_s = 60;
	c->llama_urls[c->n_llama_urls++] = xstrdup("http://127.0.0.1:8080");
	c->ollama_url = xstrdup("http://127.0.0.1:11434");
	c->idle_ttl_s = 300;
	c->pressure_high = 95;
	c->pressure_low = 85;
	c->pressure_action = CONFIG_PRESSURE_SHRINK;
	c->regrow = 1;
	c->regrow_hold_s = 30;
	c->drain_timeout_s = 30;
	c->parallel = 4;      /* llama-server's own default: 4 slots sharing one KV cache */
	c->queue_max = 64;
	c->max_overtake = 8;
}

static void free_list(char **l, size_t *n)
{
	for (size_t i = 0; i < *n; i++)
		free(l[i]);
	*n = 0;
}

static void free_groups(struct config_group *g, size_t *n)
{
	for (size_t i = 0; i < *n; i++)
		free_list(g[i].ids, &g[i].n_ids);
	*n = 0;
}

static void free_hooks(struct config_webhook *h, size_t *n)
{
	for (size_t i = 0; i < *n; i++) {
		free(h[i].url);
		free_list(h[i].events, &h[i].n_events);
	}
	*n = 0;
}

static void free_aliases(struct config_alias *a, size_t *n)
{
	for (size_t i = 0; i < *n; i++) {
		free(a[i].name);
		free(a[i].id);
	}
	*n = 0;
}

void config_take_aliases(struct config *to, struct config *from)
{
	free_aliases(to->aliases, &to->n_aliases);
	memcpy(to->aliases, from->aliases, from->n_aliases * sizeof *from->aliases);
	to->n_aliases = from->n_aliases;
	from->n_aliases = 0;
}

void config_free(struct config *c)
{
	free(c->config_path);
	free(c->listen_host);
	free(c->state_dir);
	free_list(c->models_dirs, &c->n_models_dirs);
	free(c->llama_server);
	free(c->nvml_lib);
	free(c->sysfs_root);
	free_list(c->llama_urls, &c->n_llama_urls);
	free(c->ollama_url);
	free_hooks(c->webhooks, &c->n_webhooks);
	free_groups(c->exclusive, &c->n_exclusive);
	free_aliases(c->aliases, &c->n_aliases);
	free_list(c->allowed_hosts, &c->n_allowed_hosts);
	free_list(c->allowed_origins, &c->n_allowed_origins);
	free(c->api_key_file);
	memset(c, 0, sizeof *c);
}

static void set_str(char **dst, const char *v)
{
	free(*dst);
	*dst = xstrdup(v);
}

/* Folders given relative are taken relative to the working directory at start. */
static char *absolute(const char *v)
{
	char cwd[4096];
	if (v[0] == '/' || v[0] == '\0' || getcwd(cwd, sizeof cwd) == NULL)
		return xstrdup(v);
	return xasprintf("%s/%s", cwd, v);
}

static int parse_listen(struct config *c, const char *v, char *err, size_t errlen)
{
	const char *colon = strrchr(v, ':');
	long long port;
	if (colon == NULL || colon == v || util_parse_int(colon + 1, 0, 65535, &port) < 0) {
		snprintf(err, errlen, "listen: '%s' is not HOST:PORT", v);
		return -1;
	}
	free(c->listen_host);
	c->listen_host = xstrndup(v, (size_t)(colon - v));
	c->listen_port = (int)port;
	return 0;
}

static int parse_uint(const char *key, const char *v, long long min, long long max,
    unsigned *out, char *err, size_t errlen)
{
	long long n;
	if (util_parse_int(v, min, max, &n) < 0) {
		snprintf(err, errlen, "%s: '%s' is not a number in %lld..%lld", key, v, min, max);
		return -1;
	}
	*out = (unsigned)n;
	return 0;
}

/* pressure_action = shrink|unload, regrow = on|off. */
static int parse_ladder(struct config *c, const char *key, const char *v, char *err,
    size_t errlen)
{
	if (key[0] == 'p' && (strcmp(v, "shrink") == 0 || strcmp(v, "unload") == 0)) {
		c->pressure_action = v[0] == 's' ? CONFIG_PRESSURE_SHRINK : CONFIG_PRESSURE_UNLOAD;
		return 0;
	}
	if (key[0] == 'r' && (strcmp(v, "on") == 0 || strcmp(v, "off") == 0)) {
		c->regrow = strcmp(v, "on") == 0;
		return 0;
	}
	snprintf(err, errlen, "%s: '%s' is not %s", key, v, key[0] == 'p' ? "shrink or unload" :
	    "on or off");
	return -1;
}

static int parse_level(const char *v, int *out)
{
	static const char *names[] = { "error", "warn", "info", "debug" };
	for (int i = 0; i < 4; i++) {
		if (strcmp(v, names[i]) == 0) {
			*out = i;
			return 0;
		}
	}
	return -1;
}

/* Lists given in one source replace those of an earlier source: `fresh` tracks that. */
struct lists_seen {
	int dirs, urls, hooks, groups, aliases, hosts, origins, rpc;
};

int config_parse_split(const char *v, enum config_split *out)
{
	if (strcmp(v, "auto") != 0 && strcmp(v, "never") != 0)
		return -1;
	*out = v[0] == 'a' ? CONFIG_SPLIT_AUTO : CONFIG_SPLIT_NEVER;
	return 0;
}

/* rpc_device = HOST:PORT SIZE, one line per server (the lines of one source replace
 * those of an earlier one). */
static int add_rpc(struct config *c, int *seen, const char *v, char *err, size_t errlen)
{
	uint64_t size;
	const char *sp = strchr(v, ' ');
	const char *colon = strchr(v, ':');
	if (sp == NULL || sp - v >= (long)sizeof c->rpc_devices[0].addr || colon == NULL ||
	    colon > sp || colon == v || util_parse_size(sp + 1, &size) < 0 || size == 0) {
		snprintf(err, errlen, "rpc_device: '%s' is not 'HOST:PORT SIZE'", v);
		return -1;
	}
	if (!*seen) {
		c->n_rpc_devices = 0;
		*seen = 1;
	}
	if (c->n_rpc_devices == CONFIG_MAX_RPC) {
		snprintf(err, errlen, "rpc_device: at most %d servers", CONFIG_MAX_RPC);
		return -1;
	}
	struct config_rpc *r = &c->rpc_devices[c->n_rpc_devices];
	for (size_t i = 0; i < c->n_rpc_devices; i++)
		if (strncmp(c->rpc_devices[i].addr, v, (size_t)(sp - v)) == 0 &&
		    c->rpc_devices[i].addr[sp - v] == '\0') {
			snprintf(err, errlen, "rpc_device: %.*s is given twice", (int)(sp - v), v);
			return -1;
		}
	snprintf(r->addr, sizeof r->addr, "%.*s", (int)(sp - v), v);
	r->budget = size;
	c->n_rpc_devices++;
	return 0;
}

static int add_list(char **l, size_t *n, size_t max, int *seen, const char *key,
    const char *v, char *err, size_t errlen)
{
	if (!*seen) {
		free_list(l, n);
		*seen = 1;
	}
	if (*n == max) {
		snprintf(err, errlen, "%s: at most %zu values", key, max);
		return -1;
	}
	l[(*n)++] = strcmp(key, "models_dir") == 0 ? absolute(v) : xstrdup(v);
	return 0;
}

/* Splits v at spaces and commas into words (heap) in out[0..max). Returns the count,
 * or -1 when there are more than max. */
static int split_words(const char *v, char **out, size_t max)
{
	char *buf = xstrdup(v), *save = NULL;
	size_t n = 0;
	int rc = 0;
	for (char *t = strtok_r(buf, ", ", &save); t != NULL; t = strtok_r(NULL, ", ", &save)) {
		if (n == max) {
			rc = -1;
			break;
		}
		out[n++] = xstrdup(t);
	}
	free(buf);
	if (rc < 0)
		free_list(out, &n);
	return rc < 0 ? -1 : (int)n;
}

/* The slot for one more value of a typed list (the first value from a source clears
 * the values of an earlier one, as add_list does), or NULL with err when full. */
static size_t typed_slot(size_t *n, size_t max, int *seen, void (*clear)(void *, size_t *),
    void *list, const char *key, char *err, size_t errlen)
{
	if (!*seen) {
		clear(list, n);
		*seen = 1;
	}
	if (*n == max) {
		snprintf(err, errlen, "%s: at most %zu values", key, max);
		return (size_t)-1;
	}
	return (*n)++;
}

static void clear_groups(void *l, size_t *n) { free_groups(l, n); }
static void clear_hooks(void *l, size_t *n) { free_hooks(l, n); }
static void clear_aliases(void *l, size_t *n) { free_aliases(l, n); }

/* exclusive = "ID ID ...". */
static int add_group(struct config *c, struct lists_seen *ls, const char *v, char *err,
    size_t errlen)
{
	char *ids[CONFIG_MAX_GROUP];
	int n = split_words(v, ids, CONFIG_MAX_GROUP);
	if (n < 0) {
		snprintf(err, errlen, "exclusive: at most %d model ids in a group", CONFIG_MAX_GROUP);
		return -1;
	}
	size_t i = typed_slot(&c->n_exclusive, CONFIG_MAX_URLS, &ls->groups, clear_groups,
	    c->exclusive, "exclusive", err, errlen);
	if (i == (size_t)-1) {
		size_t nn = (size_t)n;
		free_list(ids, &nn);
		return -1;
	}
	memcpy(c->exclusive[i].ids, ids, (size_t)n * sizeof *ids);
	c->exclusive[i].n_ids = (size_t)n;
	return 0;
}

/* webhook = "URL" or "URL type,type,...". */
static int add_hook(struct config *c, struct lists_seen *ls, const char *v, char *err,
    size_t errlen)
{
	if (strncmp(v, "http://", 7) != 0) {
		snprintf(err, errlen, "webhook: '%s' is not an http:// URL", v);
		return -1;
	}
	const char *sp = strchr(v, ' ');
	char *events[CONFIG_MAX_HOOK_EVENTS];
	int n = sp ? split_words(sp + 1, events, CONFIG_MAX_HOOK_EVENTS) : 0;
	if (n < 0) {
		snprintf(err, errlen, "webhook: at most %d event types", CONFIG_MAX_HOOK_EVENTS);
		return -1;
	}
	size_t i = typed_slot(&c->n_webhooks, CONFIG_MAX_URLS, &ls->hooks, clear_hooks,
	    c->webhooks, "webhook", err, errlen);
	if (i == (size_t)-1) {
		size_t nn = (size_t)n;
		free_list(events, &nn);
		return -1;
	}
	struct config_webhook *h = &c->webhooks[i];
	h->url = sp ? xstrndup(v, (size_t)(sp - v)) : xstrdup(v);
	memcpy(h->events, events, (size_t)n * sizeof *events);
	h->n_events = (size_t)n;
	return 0;
}

/* alias = "NAME MODEL_ID". */
static int add_alias(struct config *c, struct lists_seen *ls, const char *v, char *err,
    size_t errlen)
{
	const char *sp = strchr(v, ' ');
	if (sp == NULL || sp == v || sp[1] == '\0' || strchr(sp + 1, ' ') != NULL) {
		snprintf(err, errlen, "alias: '%s' is not 'NAME MODEL_ID'", v);
		return -1;
	}
	size_t i = typed_slot(&c->n_aliases, CONFIG_MAX_ALIASES, &ls->aliases, clear_aliases,
	    c->aliases, "alias", err, errlen);
	if (i == (size_t)-1)
		return -1;
	c->aliases[i].name = xstrndup(v, (size_t)(sp - v));
	c->aliases[i].id = xstrdup(sp + 1);
	return 0;
}

/* Sets one key (section-qualified names accepted without section too). */
static int set_key(struct config *c, struct lists_seen *ls, const char *key, const char *v,
    char *err, size_t errlen)
{
	uint64_t sz;
	if (strcmp(key, "listen") == 0)
		return parse_listen(c, v, err, errlen);
	if (strcmp(key, "state_dir") == 0) {
		free(c->state_dir);
		c->state_dir = absolute(v);
		return 0;
	}
	if (strcmp(key, "models_dir") == 0)
		return add_list(c->models_dirs, &c->n_models_dirs, CONFIG_MAX_DIRS, &ls->dirs,
		    key, v, err, errlen);
	if (strcmp(key, "llama_server") == 0)
		return set_str(&c->llama_server, v), 0;
	if (strcmp(key, "nvml_lib") == 0)
		return set_str(&c->nvml_lib, v), 0;
	if (strcmp(key, "sysfs_root") == 0)
		return set_str(&c->sysfs_root, v), 0;
	if (strcmp(key, "log_level") == 0) {
		if (parse_level(v, &c->log_level) == 0)
			return 0;
		snprintf(err, errlen, "log_level: '%s' is not error, warn, info or debug", v);
		return -1;
	}
	if (strcmp(key, "sample_interval_ms") == 0)
		return parse_uint(key, v, 50, 600000, &c->sample_interval_ms, err, errlen);
	if (strcmp(key, "history") == 0)
		return parse_uint(key, v, 1, 100000, &c->history, err, errlen);
	if (strcmp(key, "rescan_interval_s") == 0)
		return parse_uint(key, v, 0, 86400, &c->rescan_interval_s, err, errlen);
	if (strcmp(key, "discover_interval_s") == 0)
		return parse_uint(key, v, 1, 86400, &c->discover_interval_s, err, errlen);
	if (strcmp(key, "scan_ctx") == 0)
		return parse_uint(key, v, 0, MODEL_MAX_CTX, &c->scan_ctx, err, errlen);
	if (strcmp(key, "reserve") == 0 || strcmp(key, "max_body") == 0) {
		if (util_parse_size(v, &sz) < 0 || (key[0] == 'm' && (sz < 1024 ||
		    sz > (1ull << 30)))) {
			snprintf(err, errlen, "%s: '%s' is not a size (e.g. 512M)", key, v);
			return -1;
		}
		*(key[0] == 'r' ? &c->reserve : &c->max_body) = sz;
		return 0;
	}
	if (strcmp(key, "llama_server_url") == 0)
		return add_list(c->llama_urls, &c->n_llama_urls, CONFIG_MAX_URLS, &ls->urls, key,
		    v, err, errlen);
	if (strcmp(key, "ollama_url") == 0)
		return set_str(&c->ollama_url, v), 0;
	if (strcmp(key, "rpc_device") == 0)
		return add_rpc(c, &ls->rpc, v, err, errlen);
	if (strcmp(key, "split") == 0) {
		if (config_parse_split(v, &c->split) == 0)
			return 0;
		snprintf(err, errlen, "split: '%s' is not auto or never", v);
		return -1;
	}
	if (strcmp(key, "exclusive") == 0)
		return add_group(c, ls, v, err, errlen);
	if (strcmp(key, "pressure_high") == 0)
		return parse_uint(key, v, 1, 100, &c->pressure_high, err, errlen);
	if (strcmp(key, "pressure_low") == 0)
		return parse_uint(key, v, 1, 100, &c->pressure_low, err, errlen);
	if (strcmp(key, "idle_ttl_s") == 0)
		return parse_uint(key, v, 0, 30 * 86400, &c->idle_ttl_s, err, errlen);
	if (strcmp(key, "pressure_action") == 0 || strcmp(key, "regrow") == 0)
		return parse_ladder(c, key, v, err, errlen);
	if (strcmp(key, "regrow_hold_s") == 0)
		return parse_uint(key, v, 1, 86400, &c->regrow_hold_s, err, errlen);
	if (strcmp(key, "drain_timeout_s") == 0)
		return parse_uint(key, v, 0, 3600, &c->drain_timeout_s, err, errlen);
	if (strcmp(key, "parallel") == 0)
		return parse_uint(key, v, 1, 256, &c->parallel, err, errlen);
	if (strcmp(key, "max_connections") == 0)
		return parse_uint(key, v, 1, 1000000, &c->max_connections, err, errlen);
	if (strcmp(key, "header_timeout_s") == 0)
		return parse_uint(key, v, 1, 3600, &c->header_timeout_s, err, errlen);
	if (strcmp(key, "body_timeout_s") == 0)
		return parse_uint(key, v, 1, 86400, &c->body_timeout_s, err, errlen);
	if (strcmp(key, "queue_max") == 0)
		return parse_uint(key, v, 1, 100000, &c->queue_max, err, errlen);
	if (strcmp(key, "max_overtake") == 0)
		return parse_uint(key, v, 0, 100000, &c->max_overtake, err, errlen);
	if (strcmp(key, "alias") == 0)
		return add_alias(c, ls, v, err, errlen);
	if (strcmp(key, "allowed_hosts") == 0)
		return add_list(c->allowed_hosts, &c->n_allowed_hosts, CONFIG_MAX_URLS, &ls->hosts,
		    key, v, err, errlen);
	if (strcmp(key, "allowed_origins") == 0)
		return add_list(c->allowed_origins, &c->n_allowed_origins, CONFIG_MAX_URLS,
		    &ls->origins, key, v, err, errlen);
	if (strcmp(key, "api_key_file") == 0) {
		free(c->api_key_file);
		c->api_key_file = absolute(v);
		return 0;
	}
	if (strcmp(key, "webhook") == 0)
		return add_hook(c, ls, v, err, errlen);
	snprintf(err, errlen, "unknown key '%s'", key);
	return -1;
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* One line (NUL-terminated, trimmed by the caller's copy) of the INI text: a comment, a
 * [section] or a key. section is the current one, updated. Returns 0 or -1 with err. */
static int parse_line(struct config *c, struct lists_seen *ls, char *section, size_t slen,
    char *line, const char *name, int lineno, char *err, size_t errlen)
{
	char msg[512];
	char *s = trim(line);
	if (*s == '\0' || *s == '#' || *s == ';')
		return 0;
	if (*s == '[') {
		char *e = strchr(s, ']');
		if (e == NULL || e[1] != '\0' || e - s - 1 >= (long)slen) {
			snprintf(err, errlen, "%s:%d: bad section header", name, lineno);
			return -1;
		}
		*e = '\0';
		snprintf(section, slen, "%s", trim(s + 1));
		if (strcmp(section, "daemon") != 0 && strcmp(section, "backends") != 0) {
			snprintf(err, errlen, "%s:%d: unknown section [%s] (daemon, backends)",
			    name, lineno, section);
			return -1;
		}
		return 0;
	}
	char *eq = strchr(s, '=');
	if (eq == NULL) {
		snprintf(err, errlen, "%s:%d: expected key = value", name, lineno);
		return -1;
	}
	*eq = '\0';
	char *k = trim(s), *v = trim(eq + 1);
	if (set_key(c, ls, k, v, msg, sizeof msg) < 0) {
		snprintf(err, errlen, "%s:%d: %s", name, lineno, msg);
		return -1;
	}
	return 0;
}

int config_parse_buf(struct config *c, const char *name, const char *buf, size_t len,
    char *err, size_t errlen)
{
	char line[LINE_MAX_LEN], section[64] = "daemon";
	struct lists_seen ls = { 0 };
	int lineno = 0;
	size_t pos = 0;
	while (pos < len) {
		lineno++;
		const char *nl = memchr(buf + pos, '\n', len - pos);
		size_t n = (nl != NULL ? (size_t)(nl - buf) : len) - pos;
		if (n > LINE_MAX_LEN - 2) {
			snprintf(err, errlen, "%s:%d: line longer than %d bytes", name, lineno,
			    LINE_MAX_LEN - 2);
			return -1;
		}
		if (memchr(buf + pos, '\0', n) != NULL) {
			snprintf(err, errlen, "%s:%d: a NUL byte (a binary file?)", name, lineno);
			return -1;
		}
		memcpy(line, buf + pos, n);
		line[n] = '\0';
		pos += n + (nl != NULL);
		if (parse_line(c, &ls, section, sizeof section, line, name, lineno, err,
		    errlen) < 0)
			return -1;
	}
	return 0;
}

/* Reads the whole file at path (at most CONFIG_MAX_FILE bytes) into a heap buffer.
 * Returns it (free it) with its length, or NULL with "PATH: why" in err: a config file
 * that cannot be read is an error, never an empty configuration. */
static char *read_config(const char *path, size_t *len, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "%s: cannot read the config file: %s", path, strerror(errno));
		return NULL;
	}
	struct stat st;
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s: is a directory, not a config file", path);
		close(fd);
		return NULL;
	}
	char *buf = xmalloc(CONFIG_MAX_FILE + 1);
	size_t n = 0;
	int bad = 0;
	while (!bad) {
		ssize_t r = read(fd, buf + n, CONFIG_MAX_FILE + 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(err, errlen, "%s: cannot read the config file: %s", path,
			    strerror(errno));
			bad = 1;
			break;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n > CONFIG_MAX_FILE) {
			snprintf(err, errlen, "%s: larger than %u KiB: not a config file", path,
			    CONFIG_MAX_FILE >> 10);
			bad = 1;
		}
	}
	close(fd);
	if (bad) {
		free(buf);
		return NULL;
	}
	*len = n;
	return buf;
}

int config_load_file(struct config *c, const char *path, char *err, size_t errlen)
{
	size_t len = 0;
	char *buf = read_config(path, &len, err, errlen);
	if (buf == NULL)
		return -1;
	int rc = config_parse_buf(c, path, buf, len, err, errlen);
	free(buf);
	if (rc == 0)
		set_str(&c->config_path, path);
	return rc;
}

void config_usage(void *fp)
{
	FILE *f = fp;
	fprintf(f,
	    "usage: mloffloadd [--config FILE] [--listen HOST:PORT] [--models-dir DIR]...\n"
	    "                  [--state-dir DIR] [--llama-server PATH] [--nvml-lib PATH]\n"
	    "                  [--llama-url URL]... [--ollama-url URL] [--reserve SIZE]\n"
	    "                  [--rescan SECONDS] [--idle-ttl SECONDS] [--webhook URL]...\n"
	    "                  [--exclusive \"ID ID...\"]... [--rpc-device \"HOST:PORT SIZE\"]...\n"
	    "                  [--split auto|never]\n"
	    "                  [--parallel N] [--queue-max N] [--max-overtake N]\n"
	    "                  [--alias \"NAME ID\"]... [--api-key-file FILE]\n"
	    "                  [--allowed-host NAME]... [--allowed-origin ORIGIN]...\n"
	    "                  [--max-connections N]\n"
	    "                  [--sample-ms MS] [--sysfs-root DIR] [-n] [-v]...\n"
	    "  -n   check the configuration and exit\n"
	    "  -v   more log (repeat for debug)\n");
}

int config_parse_args(struct config *c, int argc, char **argv, char *err, size_t errlen)
{
	/* the file first, so that flags override it */
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--config") == 0) {
			if (i + 1 >= argc) {
				snprintf(err, errlen, "--config needs a file");
				return -1;
			}
			if (config_load_file(c, argv[i + 1], err, errlen) < 0)
				return -1;
			i++;
		}
	}
	static const struct { const char *flag, *key; } map[] = {
		{ "--listen", "listen" }, { "--models-dir", "models_dir" },
		{ "--state-dir", "state_dir" }, { "--llama-server", "llama_server" },
		{ "--nvml-lib", "nvml_lib" }, { "--llama-url", "llama_server_url" },
		{ "--ollama-url", "ollama_url" }, { "--reserve", "reserve" },
		{ "--rescan", "rescan_interval_s" }, { "--sysfs-root", "sysfs_root" },
		{ "--sample-ms", "sample_interval_ms" }, { "--idle-ttl", "idle_ttl_s" },
		{ "--webhook", "webhook" }, { "--exclusive", "exclusive" },
		{ "--rpc-device", "rpc_device" }, { "--split", "split" }, { "--parallel", "parallel" },
		{ "--queue-max", "queue_max" }, { "--max-overtake", "max_overtake" },
		{ "--alias", "alias" }, { "--allowed-host", "allowed_hosts" },
		{ "--allowed-origin", "allowed_origins" }, { "--api-key-file", "api_key_file" },
		{ "--max-connections", "max_connections" },
	};
	struct lists_seen ls = { 0 };
	char msg[512];
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--config") == 0) {
			i++;
			continue;
		}
		if (strcmp(a, "-n") == 0) {
			c->check_only = 1;
			continue;
		}
		if (strcmp(a, "-v") == 0 || strcmp(a, "-vv") == 0) {
			c->log_level += (int)strlen(a) - 1;
			if (c->log_level > LOG_LVL_DEBUG)
				c->log_level = LOG_LVL_DEBUG;
			continue;
		}
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			config_usage(stdout);
			return 1;
		}
		if (strcmp(a, "--version") == 0) {
			printf("mloffloadd %s\n", MLO_VERSION);
			return 1;
		}
		size_t j = 0;
		while (j < sizeof map / sizeof map[0] && strcmp(map[j].flag, a) != 0)
			j++;
		if (j == sizeof map / sizeof map[0]) {
			snprintf(err, errlen, "unknown option '%s' (see --help)", a);
			return -1;
		}
		if (i + 1 >= argc) {
			snprintf(err, errlen, "%s needs a value", a);
			return -1;
		}
		if (set_key(c, &ls, map[j].key, argv[++i], msg, sizeof msg) < 0) {
			snprintf(err, errlen, "%s: %s", a, msg);
			return -1;
		}
	}
	return 0;
}

int config_validate(const struct config *c, char *err, size_t errlen)
{
	if (c->n_models_dirs == 0) {
		snprintf(err, errlen, "no models_dir given");
		return -1;
	}
	for (size_t i = 0; i < c->n_models_dirs; i++) {
		if (c->models_dirs[i][0] != '/') {
			snprintf(err, errlen, "models_dir '%s' is not an absolute path",
			    c->models_dirs[i]);
			return -1;
		}
	}
	if (c->state_dir[0] != '/') {
		snprintf(err, errlen, "state_dir '%s' is not an absolute path", c->state_dir);
		return -1;
	}
	for (size_t i = 0; i < c->n_llama_urls; i++) {
		if (strncmp(c->llama_urls[i], "http://", 7) != 0) {
			snprintf(err, errlen, "llama_server_url '%s' is not an http:// URL",
			    c->llama_urls[i]);
			return -1;
		}
	}
	if (c->ollama_url[0] != '\0' && strncmp(c->ollama_url, "http://", 7) != 0) {
		snprintf(err, errlen, "ollama_url '%s' is not an http:// URL", c->ollama_url);
		return -1;
	}
	return 0;
}
