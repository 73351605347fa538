/*
 * cli_daemon: the mloffload commands that drive a running daemon: ps, load, unload,
 * switch, events, logs. load and switch follow GET /events while their POST is in
 * flight, so that a person sees what happens (queued, evicting, starting, loading,
 * ready in N s with the memory per device): a redrawn bar on a terminal, one plain
 * line per step otherwise. Exit status: 0 done, 1 the daemon refused or could not be
 * reached (its reason on stderr), 2 usage, 3 the model does not fit (507).
 */
#include "cli.h"
#include "client.h"
#include "model.h"
#include "util.h"

#include <curl/curl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *str(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "-";
}

static long long num(json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

uint64_t cli_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- SSE ---- */

void cli_sse_feed(struct cli_sse *s, const char *p, size_t n, cli_sse_fn fn, void *arg)
{
	for (size_t i = 0; i < n; i++) {
		char ch = p[i];
		if (ch == '\r')
			continue;
		if (ch != '\n') {
			if (s->len < sizeof s->line - 1)
				s->line[s->len++] = ch;   /* a longer line is cut, not overrun */
			continue;
		}
		s->line[s->len] = '\0';
		if (s->len == 0) {   /* a blank line ends an event */
			if (s->data != NULL)
				fn(s->event, s->data, arg);
			free(s->data);
			s->data = NULL;
			s->event[0] = '\0';
		} else if (strncmp(s->line, "data:", 5) == 0) {
			const char *v = s->line + 5 + (s->line[5] == ' ');
			char *d = s->data ? xasprintf("%s\n%s", s->data, v) : xstrdup(v);
			free(s->data);
			s->data = d;
		} else if (strncmp(s->line, "event:", 6) == 0) {
			snprintf(s->event, sizeof s->event, "%s", s->line + 6 + (s->line[6] == ' '));
		}
		s->len = 0;
	}
}

void cli_sse_free(struct cli_sse *s)
{
	free(s->data);
	s->data = NULL;
}

/* ---- shared ---- */

/* Parses the flags every command takes: --json, --help. Returns 1 when argv[*i] was one. */
static int common_flag(const char *a, int *json, int *help)
{
	if (strcmp(a, "--json") == 0)
		return *json = 1;
	if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
		return *help = 1;
	return 0;
}

static int say_usage(int help, const char *text)
{
	fputs(text, help ? stdout : stderr);
	return help ? 0 : 2;
}

/* POSTs body to path; on success prints the answer (--json) and returns it (new) in
 * *out when out is not NULL. Returns the exit status. */
static int post(const struct client *c, const char *path, json_t *body, int json,
    json_t **out)
{
	char *b = json_dumps(body, JSON_COMPACT);
	long st = 0;
	json_t *j = client_call(c, "POST", path, b, &st);
	free(b);
	if (out != NULL)
		*out = NULL;
	if (j == NULL)
		return 1;
	int rc = st >= 200 && st < 300 ? 0 : st == 507 ? 3 : 1;
	if (json)
		client_print_json(json_incref(j));
	else if (rc != 0)
		fprintf(stderr, "mloffload: %s\n", client_error(j));
	if (out != NULL && rc == 0)
		*out = j;
	else
		json_decref(j);
	return rc;
}

static void fmt_dur(long long s, char *buf, size_t len)
{
	if (s < 60)
		snprintf(buf, len, "%lld s", s);
	else if (s < 3600)
		snprintf(buf, len, "%lld min", s / 60);
	else
		snprintf(buf, len, "%lld h %lld min", s / 3600, s % 3600 / 60);
}

/* ---- ps ---- */

static const char ps_help[] = "usage: mloffload ps [--json]\n"
    "  the loaded models: where they are, how much memory each holds on the GPU and in\n"
    "  RAM (planned), state, idle time and when the idle TTL unloads them\n";

/* Every device of loaded model v with what it holds there, llama.cpp's names joined
 * by " + " ("RPC0 1.20 GiB + RPC1 900 MiB"), into buf ("" for none). */
static void ps_devices(json_t *v, char *buf, size_t len)
{
	json_t *d;
	size_t i;
	buf[0] = '\0';
	json_array_foreach(json_object_get(v, "devices"), i, d) {
		char a[32];
		long long n = num(json_object_get(d, "planned"), "total_bytes");
		if (n <= 0)
			continue;
		size_t l = strlen(buf);
		snprintf(buf + l, len - l, "%s%s %s", l ? " + " : "", str(d, "name"),
		    util_fmt_size((uint64_t)n, a, sizeof a));
	}
}

int cli_daemon_ps(const struct client *c, int argc, char **argv)
{
	int json = 0, help = 0;
	for (int i = 1; i < argc; i++)
		if (!common_flag(argv[i], &json, &help))
			return say_usage(0, ps_help);
	if (help)
		return say_usage(1, ps_help);
	long st = 0;
	json_t *j = client_call(c, "GET", "/status", NULL, &st), *v;
	if (j == NULL)
		return 1;
	if (st != 200) {
		fprintf(stderr, "mloffload: %s\n", client_error(j));
		json_decref(j);
		return 1;
	}
	json_t *loaded = json_object_get(j, "loaded");
	if (json) {
		client_print_json(json_incref(loaded));
		json_decref(j);
		return 0;
	}
	size_t i;
	int w = 4;
	json_array_foreach(loaded, i, v)
		if ((int)strlen(str(v, "model")) > w)
			w = (int)strlen(str(v, "model"));
	printf("%-*s  %-9s %-32s %-18s %-10s %s\n", w, "NAME", "STATE", "MEMORY", "PROCESSOR",
	    "IDLE", "UNTIL");
	json_array_foreach(loaded, i, v) {
		json_t *p = json_object_get(v, "plan");
		long long dev = num(json_object_get(p, "device"), "total_bytes");
		long long cpu = num(json_object_get(p, "cpu"), "total_bytes");
		char b[32], mem[256], proc[32], idle[64], until[72];
		util_fmt_size((uint64_t)cpu, b, sizeof b);
		ps_devices(v, mem, sizeof mem);
		size_t ml = strlen(mem);
		snprintf(mem + ml, sizeof mem - ml, "%sCPU %s", ml ? ", " : "", b);
		int pg = dev + cpu > 0 ? (int)(dev * 100 / (dev + cpu)) : 0;
		if (pg >= 100 || cpu == 0)
			snprintf(proc, sizeof proc, "100%% GPU");
		else if (pg <= 0)
			snprintf(proc, sizeof proc, "100%% CPU");
		else
			snprintf(proc, sizeof proc, "%d%% GPU / %d%% CPU", pg, 100 - pg);
		if (num(v, "in_flight") > 0)
			snprintf(idle, sizeof idle, "busy (%lld)", num(v, "in_flight"));
		else if (json_is_integer(json_object_get(v, "idle_s")))
			fmt_dur(num(v, "idle_s"), idle, sizeof idle);
		else
			snprintf(idle, sizeof idle, "-");
		if (json_is_true(json_object_get(v, "pinned")))
			snprintf(until, sizeof until, "pinned");
		else if (json_is_integer(json_object_get(v, "expires_in_s"))) {
			char d[64];
			fmt_dur(num(v, "expires_in_s"), d, sizeof d);
			snprintf(until, sizeof until, "in %s", d);
		} else
			snprintf(until, sizeof until, "%s", num(v, "ttl_s") == 0 ? "never" : "-");
		printf("%-*s  %-9s %-32s %-18s %-10s %s\n", w, str(v, "model"), str(v, "state"), mem,
		    proc, idle, until);
	}
	json_decref(j);
	return 0;
}

/* ---- load and switch, with progress ---- */

struct progress {
	const char *model;        /* the model being loaded */
	const char *from;         /* switch: the model that leaves, else NULL */
	int tty, json;
	uint64_t t0;
	const char *stage;        /* queued, evicting, starting, loading */
	char line[256];           /* the last step, for the bar */
	struct cli_sse sse;
	struct buf { char *p; size_t len; } answer;
};

/* One step: a line of its own when not on a terminal, the bar's text on one. */
static void step(struct progress *pr, const char *stage, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void step(struct progress *pr, const char *stage, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(pr->line, sizeof pr->line, fmt, ap);
	va_end(ap);
	if (stage != NULL)
		pr->stage = stage;
	if (pr->json)
		return;
	if (pr->tty)
		printf("\r\033[K%s\n", pr->line);
	else
		printf("%s\n", pr->line);
	fflush(stdout);
}

static void draw_bar(struct progress *pr)
{
	if (!pr->tty || pr->json)
		return;
	static const char spin[] = "|/-\\";
	double t = (double)(cli_now_ms() - pr->t0) / 1000.0, f;
	if (strcmp(pr->stage, "loading") == 0)
		f = 0.4 + 0.55 * (1.0 - 1.0 / (1.0 + t / 4.0));   /* creeps on, never full */
	else
		f = strcmp(pr->stage, "starting") == 0 ? 0.35 : strcmp(pr->stage, "evicting") == 0 ?
		    0.2 : 0.08;
	char bar[31];
	int n = (int)(f * 30);
	for (int i = 0; i < 30; i++)
		bar[i] = i < n ? '#' : '-';
	bar[30] = '\0';
	printf("\r\033[K%c %s %-9s [%s] %.1f s", spin[(int)(t * 8) % 4], pr->model, pr->stage,
	    bar, t);
	fflush(stdout);
}

static void on_event(const char *type, const char *data, void *arg)
{
	struct progress *pr = arg;
	json_error_t je;
	json_t *e = json_loads(data, 0, &je), *d = json_object_get(e, "data");
	const char *m = str(d, "model");
	char a[32], b[32];
	if (strcmp(m, pr->model) == 0) {
		if (strcmp(type, "model.queued") == 0) {
			json_t *ev = json_object_get(d, "evicting"), *x;
			size_t i;
			char list[160] = "";
			json_array_foreach(ev, i, x)
				snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
				    i ? ", " : "", json_string_value(x));
			step(pr, list[0] ? "evicting" : "queued", "queued (position %lld)%s%s",
			    num(d, "position"), list[0] ? ", evicting " : "", list);
		} else if (strcmp(type, "model.loading") == 0) {
			step(pr, "loading", "starting llama-server: %lld of %lld layers on the GPU "
			    "(%s), %s in RAM", num(d, "gpu_layers"), num(d, "layers"),
			    util_fmt_size((uint64_t)num(d, "device_bytes"), a, sizeof a),
			    util_fmt_size((uint64_t)num(d, "cpu_bytes"), b, sizeof b));
		} else if (strcmp(type, "model.failed") == 0) {
			step(pr, NULL, "failed: %s", str(d, "error"));
		}
	} else if (strcmp(type, "model.unloaded") == 0) {
		step(pr, NULL, "%s unloaded", m);
	}
	json_decref(e);
}

static int on_events_data(const char *p, size_t n, void *arg)
{
	struct progress *pr = arg;
	cli_sse_feed(&pr->sse, p, n, on_event, pr);
	return 0;
}

static int on_answer(const char *p, size_t n, void *arg)
{
	struct progress *pr = arg;
	if (pr->answer.len + n > (1u << 20))
		return 1;
	pr->answer.p = xrealloc(pr->answer.p, pr->answer.len + n + 1);
	memcpy(pr->answer.p + pr->answer.len, p, n);
	pr->answer.len += n;
	pr->answer.p[pr->answer.len] = '\0';
	return 0;
}

/* "ready in 2.1 s: gpu0 14.2 MiB, CPU 12.6 MiB (measured: CPU 22.4 MiB)". */
static void ready_line(struct progress *pr, json_t *j)
{
	char a[32], b[32], c[32], d[32], meas[128] = "";
	json_t *p = json_object_get(j, "plan"), *v;
	long long dev = num(json_object_get(p, "device"), "total_bytes");
	long long cpu = num(json_object_get(p, "cpu"), "total_bytes");
	long long md = 0, mc = 0;
	const char *k, *k2;
	json_t *x;
	json_object_foreach(json_object_get(j, "measured"), k, v) {
		json_object_foreach(v, k2, x)
			*(strncmp(k, "CPU", 3) == 0 ? &mc : &md) += json_integer_value(x);
	}
	if (md + mc > 0)
		snprintf(meas, sizeof meas, " (measured: %s%s%sCPU %s)", md ? "device " : "",
		    md ? util_fmt_size((uint64_t)md, c, sizeof c) : "", md ? ", " : "",
		    util_fmt_size((uint64_t)mc, d, sizeof d));
	util_fmt_size((uint64_t)dev, a, sizeof a);
	util_fmt_size((uint64_t)cpu, b, sizeof b);
	double t = (double)(cli_now_ms() - pr->t0) / 1000.0;
	if (dev > 0)
		step(pr, NULL, "%s ready in %.1f s: %s %s, CPU %s%s", pr->model, t,
		    json_is_string(json_object_get(j, "device")) ? str(j, "device") : "GPU", a, b,
		    meas);
	else
		step(pr, NULL, "%s ready in %.1f s: CPU %s%s", pr->model, t, b, meas);
}

/* POSTs body to path while following /events for pr->model; returns the exit status. */
static int follow_post(const struct client *c, const char *path, json_t *body,
    struct progress *pr)
{
	pr->tty = isatty(STDOUT_FILENO);
	pr->t0 = cli_now_ms();
	pr->stage = "queued";
	struct client_stream *ev = client_stream_new(c, "GET", "/events", NULL, NULL,
	    on_events_data, pr);
	struct client_stream *evs[] = { ev, NULL };
	/* the stream first, so that no step is missed; without it, no progress */
	for (int i = 0; ev != NULL && i < 50 && client_stream_status(ev) == 0 &&
	    !client_stream_done(ev); i++)
		client_stream_poll(evs, 100);
	char *b = json_dumps(body, JSON_COMPACT);
	struct client_stream *po = client_stream_new(c, "POST", path, b, NULL, on_answer, pr);
	free(b);
	struct client_stream *both[] = { po, ev, NULL }, *one[] = { po, NULL };
	while (po != NULL && !client_stream_done(po)) {
		client_stream_poll(ev && !client_stream_done(ev) ? both : one, 100);
		draw_bar(pr);
	}
	if (pr->tty && !pr->json)
		printf("\r\033[K");
	long st = po ? client_stream_status(po) : 0;
	const char *err = po ? client_stream_error(po) : "cannot start curl";
	client_stream_free(ev);
	json_error_t je;
	json_t *j = pr->answer.p ? json_loads(pr->answer.p, 0, &je) : NULL;
	int rc;
	if (st == 0 || j == NULL) {
		fprintf(stderr, "mloffload: %s%s: %s\n", c->base, path, st == 0 && err ? err :
		    "the answer is not JSON");
		rc = 1;
	} else if (st >= 300) {
		rc = st == 507 ? 3 : 1;
		if (pr->json)
			client_print_json(json_incref(j));
		else
			fprintf(stderr, "mloffload: %s %s: %s\n", path + 1, pr->model, client_error(j));
	} else {
		rc = 0;
		if (pr->json)
			client_print_json(json_incref(j));
		else if (st == 200 && strcmp(str(j, "state"), "ready") == 0)
			ready_line(pr, j);
		else
			step(pr, NULL, "%s: %s (not waited for)", pr->model, str(j, "state"));
	}
	json_decref(j);
	client_stream_free(po);
	cli_sse_free(&pr->sse);
	free(pr->answer.p);
	return rc;
}

/* Reads load's options from argv[i]; 1 taken (i advanced), 0 not one, -1 bad value. */
static int load_flag(int argc, char **argv, int *i, json_t *body)
{
	const char *a = argv[*i], *v = *i + 1 < argc ? argv[*i + 1] : NULL;
	long long n;
	if (strcmp(a, "--pin") == 0)
		return json_object_set_new(body, "pin", json_true()), 1;
	if (strcmp(a, "--no-wait") == 0)
		return json_object_set_new(body, "wait", json_false()), 1;
	if (v == NULL)
		return 0;
	if (strcmp(a, "--ctx") == 0 || strcmp(a, "--ttl") == 0) {
		if (util_parse_int(v, 0, a[2] == 'c' ? MODEL_MAX_CTX : 30 * 86400, &n) < 0)
			return -1;
		json_object_set_new(body, a + 2, json_integer(n));
	} else if (strcmp(a, "--offload") == 0) {
		if (strcmp(v, "auto") != 0 && strcmp(v, "gpu") != 0 && strcmp(v, "cpu") != 0)
			return -1;
		json_object_set_new(body, "offload", json_string(v));
	} else {
		return 0;
	}
	(*i)++;
	return 1;
}

static const char load_help[] =
    "usage: mloffload load MODEL [--ctx N] [--offload auto|gpu|cpu] [--pin] [--ttl S]\n"
    "                      [--no-wait] [--json]\n"
    "  loads MODEL and shows each step (queued, evicting, starting, loading, ready)\n"
    "  --no-wait answers at once with the state; exit 3 when it does not fit\n";
static const char switch_help[] =
    "usage: mloffload switch FROM TO [--ctx N] [--offload auto|gpu|cpu] [--pin] [--ttl S]\n"
    "                        [--json]\n"
    "  unloads FROM and loads TO in its memory, with load's progress\n";

static int load_or_switch(const struct client *c, int argc, char **argv, int sw)
{
	const char *pos[2] = { NULL, NULL };
	int npos = 0, json = 0, help = 0, need = sw ? 2 : 1;
	json_t *body = json_object();
	for (int i = 1; i < argc; i++) {
		int r = common_flag(argv[i], &json, &help) ? 1 : load_flag(argc, argv, &i, body);
		if (r == 0 && argv[i][0] != '-' && npos < need)
			pos[npos++] = argv[i];
		else if (r <= 0) {
			json_decref(body);
			return say_usage(0, sw ? switch_help : load_help);
		}
	}
	if (help || npos != need) {
		json_decref(body);
		return say_usage(help, sw ? switch_help : load_help);
	}
	struct progress pr;
	memset(&pr, 0, sizeof pr);
	pr.json = json;
	pr.model = pos[need - 1];
	if (sw) {
		json_object_set_new(body, "from", json_string(pos[0]));
		json_object_set_new(body, "to", json_string(pos[1]));
		pr.from = pos[0];
	} else {
		json_object_set_new(body, "model", json_string(pos[0]));
	}
	int rc = follow_post(c, sw ? "/switch" : "/load", body, &pr);
	json_decref(body);
	return rc;
}

int cli_daemon_load(const struct client *c, int argc, char **argv)
{
	return load_or_switch(c, argc, argv, 0);
}

int cli_daemon_switch(const struct client *c, int argc, char **argv)
{
	return load_or_switch(c, argc, argv, 1);
}

static const char unload_help[] = "usage: mloffload unload MODEL [--json]\n"
    "  stops MODEL's llama-server and frees its memory\n";

int cli_daemon_unload(const struct client *c, int argc, char **argv)
{
	const char *model = NULL;
	int json = 0, help = 0;
	for (int i = 1; i < argc; i++) {
		if (common_flag(argv[i], &json, &help))
			continue;
		if (model != NULL || argv[i][0] == '-')
			return say_usage(0, unload_help);
		model = argv[i];
	}
	if (help || model == NULL)
		return say_usage(help, unload_help);
	json_t *body = json_pack("{s:s}", "model", model), *j;
	int rc = post(c, "/unload", body, json, &j);
	json_decref(body);
	if (rc == 0 && !json)
		printf("%s: %s\n", model, str(j, "state"));
	json_decref(j);
	return rc;
}

/* ---- events ---- */

static const char events_help[] = "usage: mloffload events [--follow] [--type T] [--json]\n"
    "  the daemon's recent events (its last 256); --follow: then each new one as it\n"
    "  happens (Ctrl-C ends); --type T: only T (model.loaded) or a family (model);\n"
    "  --json: one event object per line\n";

struct evcmd {
	int json, follow, stop;
	const char *type;
	long long until;           /* without --follow: the last id there was */
	struct cli_sse sse;
};

static int type_matches(const char *want, const char *type)
{
	size_t n = strlen(want);
	return strcmp(want, type) == 0 ||
	    (strncmp(want, type, n) == 0 && type[n] == '.');
}

static void print_event(const char *type, const char *data, void *arg)
{
	struct evcmd *ec = arg;
	json_error_t je;
	json_t *e = json_loads(data, 0, &je);
	if (e == NULL)
		return;
	if (!ec->follow && num(e, "id") >= ec->until)
		ec->stop = 1;
	if (ec->type != NULL && !type_matches(ec->type, type)) {
		json_decref(e);
		return;
	}
	if (ec->json) {
		char *s = json_dumps(e, JSON_COMPACT | JSON_PRESERVE_ORDER);
		if (s != NULL)
			puts(s);
		free(s);
	} else {
		const char *at = str(e, "at"), *k;
		json_t *v;
		printf("%.8s  %-15s", strlen(at) >= 19 ? at + 11 : at, type);
		json_object_foreach(json_object_get(e, "data"), k, v) {
			char *s = json_is_string(v) ? NULL : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
			printf(" %s=%s", k, s ? s : json_string_value(v));
			free(s);
		}
		printf("\n");
	}
	fflush(stdout);
	json_decref(e);
}

static int on_event_bytes(const char *p, size_t n, void *arg)
{
	struct evcmd *ec = arg;
	cli_sse_feed(&ec->sse, p, n, print_event, ec);
	return ec->stop;
}

int cli_daemon_events(const struct client *c, int argc, char **argv)
{
	struct evcmd ec;
	int help = 0;
	memset(&ec, 0, sizeof ec);
	for (int i = 1; i < argc; i++) {
		if (common_flag(argv[i], &ec.json, &help))
			continue;
		if (strcmp(argv[i], "--follow") == 0 || strcmp(argv[i], "-f") == 0)
			ec.follow = 1;
		else if (strcmp(argv[i], "--type") == 0 && i + 1 < argc)
			ec.type = argv[++i];
		else
			return say_usage(0, events_help);
	}
	if (help)
		return say_usage(1, events_help);
	if (!ec.follow) {
		long st = 0;
		json_t *s = client_call(c, "GET", "/status", NULL, &st);
		if (s == NULL || st != 200) {
			if (s != NULL)
				fprintf(stderr, "mloffload: %s\n", client_error(s));
			json_decref(s);
			return 1;
		}
		ec.until = num(json_object_get(s, "notify"), "events");
		json_decref(s);
		if (ec.until == 0)
			return 0;
	}
	/* Last-Event-ID 0: the daemon replays what it still has, then goes on */
	long st = client_stream_run(c, "GET", "/events", NULL, "Last-Event-ID: 0",
	    on_event_bytes, &ec);
	cli_sse_free(&ec.sse);
	if (st != 200 && st != 0)
		fprintf(stderr, "mloffload: GET /events answered %ld\n", st);
	return st == 200 ? 0 : 1;
}

/* ---- logs ---- */

static const char logs_help[] = "usage: mloffload logs MODEL [--follow] [--tail BYTES]\n"
    "  the end of MODEL's llama-server log (64 KiB; --tail sets it, at most 1 MiB);\n"
    "  --follow: then each new line as it is written (Ctrl-C ends)\n";

struct logcmd {
	struct client_stream *s;
	char err[4096];
	size_t elen;
};

static int on_log(const char *p, size_t n, void *arg)
{
	struct logcmd *lc = arg;
	if (client_stream_status(lc->s) == 200) {
		fwrite(p, 1, n, stdout);
		fflush(stdout);
	} else {
		size_t k = n < sizeof lc->err - 1 - lc->elen ? n : sizeof lc->err - 1 - lc->elen;
		memcpy(lc->err + lc->elen, p, k);
		lc->elen += k;
		lc->err[lc->elen] = '\0';
	}
	return 0;
}

int cli_daemon_logs(const struct client *c, int argc, char **argv)
{
	const char *model = NULL;
	int json = 0, help = 0, follow = 0;
	long long tail = 65536;
	for (int i = 1; i < argc; i++) {
		if (common_flag(argv[i], &json, &help))
			continue;
		if (strcmp(argv[i], "--follow") == 0 || strcmp(argv[i], "-f") == 0)
			follow = 1;
		else if (strcmp(argv[i], "--tail") == 0 && i + 1 < argc &&
		    util_parse_int(argv[i + 1], 0, 1 << 20, &tail) == 0)
			i++;
		else if (model == NULL && argv[i][0] != '-')
			model = argv[i];
		else
			return say_usage(0, logs_help);
	}
	if (help || model == NULL)
		return say_usage(help, logs_help);
	char *esc = curl_easy_escape(NULL, model, 0);
	char *path = xasprintf("/logs/%s?tail=%lld%s", esc, tail, follow ? "&follow=1" : "");
	curl_free(esc);
	struct logcmd lc;
	memset(&lc, 0, sizeof lc);
	lc.s = client_stream_new(c, "GET", path, NULL, NULL, on_log, &lc);
	struct client_stream *all[] = { lc.s, NULL };
	while (lc.s != NULL && client_stream_poll(all, 1000) > 0)
		;
	long st = lc.s ? client_stream_status(lc.s) : 0;
	const char *err = lc.s ? client_stream_error(lc.s) : "cannot start curl";
	int rc = st == 200 ? 0 : 1;
	if (st == 0) {
		fprintf(stderr, "mloffload: %s%s: %s\n", c->base, path, err ? err : "no answer");
	} else if (st != 200) {
		json_error_t je;
		json_t *j = json_loads(lc.err, 0, &je);
		fprintf(stderr, "mloffload: %s\n", client_error(j));
		json_decref(j);
	}
	client_stream_free(lc.s);
	free(path);
	return rc;
}
