/*
 * api_budget: GET /vram/budget?model=ID[&ctx=N], what a load of a model would get now
 * (docs/daemon.md). A plan needs the model's header (tensors, metadata), and parsing
 * one takes milliseconds (a 151k-token vocabulary: ~6 ms), which the event loop must
 * not spend per request. So the parsed headers are kept here, per file: a request
 * whose file (same size and mtime) is kept estimates and plans from it on the loop
 * (no file read); a request for a file not kept waits while a worker thread parses
 * it, and every request for that file that comes meanwhile waits for the same parse.
 * The kept headers are dropped when a scan is stored (api_budget_forget), and a file
 * whose size or mtime changed is parsed again. At most BUDGET_KEEP headers are kept
 * (least recently used first out): they are a few MB each at most.
 */
#include "api.h"
#include "api_int.h"
#include "config.h"
#include "device.h"
#include "discover.h"
#include "httpconn.h"
#include "model.h"
#include "registry.h"
#include "reply.h"
#include "reqcheck.h"
#include "scheduler.h"
#include "util.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/http.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BUDGET_KEEP 16
#define MAX_ID REQCHECK_MAX_ID

/* A parsed header, for the file as it was (size, mtime), and the last answer made
 * from it with what it was made of (the memo): a request with the same inputs (model,
 * context, the scheduler's view of the device, what could be evicted) gets the same
 * bytes without planning again. */
struct kept {
	char *path;
	off_t size;
	struct timespec mtime;
	struct gguf *g;
	uint64_t used;                  /* a tick of the last use (LRU) */
	char *memo_key, *memo_body;     /* heap, or NULL */
};

/* A request waiting for its file's parse. */
struct bwait {
	struct evhttp_request *req;     /* NULL once its client hung up */
	struct evhttp_connection *evcon;
	char id[MAX_ID + 1];
	long long ctx;
	struct bwait *next;
};

/* One parse in a worker thread: the file, then its result (g or err). */
struct bjob {
	struct api_budget *b;
	char *path;
	off_t size;
	struct timespec mtime;
	struct gguf *g;                 /* the worker's result, or NULL with err */
	char err[GGUF_ERR_LEN + 4096];
	pthread_t thread;
	struct bwait *waiters;
	struct bjob *next;
};

struct api_budget {
	struct api *a;
	struct kept kept[BUDGET_KEEP];
	uint64_t tick;
	struct bjob *jobs;              /* parses under way */
	int pipe[2];                    /* workers write their job's pointer */
	struct event *ev;
};

static void kept_drop(struct kept *k)
{
	free(k->memo_key);
	free(k->memo_body);
	free(k->path);
	gguf_close(k->g);
	memset(k, 0, sizeof *k);
}

void api_budget_forget(struct api *a)
{
	if (a == NULL || a->budget == NULL)
		return;
	for (size_t i = 0; i < BUDGET_KEEP; i++)
		if (a->budget->kept[i].path != NULL)
			kept_drop(&a->budget->kept[i]);
}

/* The kept header of path as st says it is now, or NULL. */
static struct kept *kept_find(struct api_budget *b, const char *path, const struct stat *st)
{
	for (size_t i = 0; i < BUDGET_KEEP; i++) {
		struct kept *k = &b->kept[i];
		if (k->path == NULL || strcmp(k->path, path) != 0)
			continue;
		if (k->size != st->st_size || k->mtime.tv_sec != st->st_mtim.tv_sec ||
		    k->mtime.tv_nsec != st->st_mtim.tv_nsec) {
			kept_drop(k);   /* the file changed */
			return NULL;
		}
		k->used = ++b->tick;
		return k;
	}
	return NULL;
}

/* Keeps j's header (taken from j), in a free slot or the least recently used one.
 * Returns its slot. */
static struct kept *kept_add(struct api_budget *b, struct bjob *j)
{
	struct kept *k = &b->kept[0];
	for (size_t i = 0; i < BUDGET_KEEP; i++) {
		if (b->kept[i].path != NULL && strcmp(b->kept[i].path, j->path) == 0) {
			k = &b->kept[i];
			break;
		}
		if (b->kept[i].path == NULL || (k->path != NULL && b->kept[i].used < k->used))
			k = &b->kept[i];
	}
	if (k->path != NULL)
		kept_drop(k);
	k->path = xstrdup(j->path);
	k->size = j->size;
	k->mtime = j->mtime;
	k->g = j->g;
	k->used = ++b->tick;
	j->g = NULL;
	return k;
}

/* What holds memory on the device and could make room: this daemon's idle models (in
 * the order a load would evict them), other processes (NVML), Ollama's models. */
static json_t *evictable(struct api *a, const struct device_info *gpu)
{
	json_t *l = sched_evictable_json(a->env.sched);
	for (size_t i = 0; gpu != NULL && i < gpu->n_procs; i++)
		json_array_append_new(l, json_pack("{s:s,s:I,s:I}", "kind", "process", "pid",
		    (json_int_t)gpu->procs[i].pid, "bytes", (json_int_t)gpu->procs[i].used));
	json_t *om = discover_ollama_models(a->env.disc), *v;
	size_t i;
	json_array_foreach(om, i, v) {
		if (json_is_true(json_object_get(v, "loaded")))
			json_array_append_new(l, json_pack("{s:s,s:O,s:O}", "kind", "ollama", "model",
			    json_object_get(v, "id"), "bytes", json_object_get(v, "vram_bytes")));
	}
	json_decref(om);
	return l;
}

/* What a load now would get: the scheduler's view of the device (its models and
 * reserve counted), or has_dev 0 with no device. */
struct bview {
	int has_dev;
	char dev_id[160], rpc[128];
	uint64_t total, budget, ovh;     /* ovh: a child's learned overhead there */
	const struct device_info *gpu;
};

static void budget_view(struct api *a, struct bview *v)
{
	memset(v, 0, sizeof *v);
	v->has_dev = sched_budget(a->env.sched, v->dev_id, sizeof v->dev_id, &v->total,
	    &v->budget, v->rpc, sizeof v->rpc) == 0;
	v->gpu = sched_gpu(a->env.sched);
	/* a new child's own overhead on the device, as learned from earlier ones */
	v->ovh = v->has_dev ? sched_learned_overhead(a->env.sched, v->dev_id) : 0;
	v->budget = v->budget > v->ovh ? v->budget - v->ovh : 0;
}

/* plan.devices: every device p uses (llama.cpp's name, the scheduler's id from the
 * accelerators of live), then the CPU. With no device used, the first device (v) with
 * nothing on it, as a plan on one device says. New array. */
static json_t *plan_devices_json(const struct plan_multi *p, const struct bview *v,
    json_t *live)
{
	json_t *a = json_array(), *acc = json_object_get(live, "accelerators"), *d;
	for (int k = 0; k < p->n_dev; k++) {
		json_t *o = model_usage_json(p->dev[k].name, &p->dev[k].use, 0);
		size_t i;
		json_array_foreach(acc, i, d)
			if (strcmp(json_string_value(json_object_get(d, "name")), p->dev[k].name) == 0)
				json_object_set(o, "id", json_object_get(d, "id"));
		json_object_set_new(o, "budget_bytes", json_integer((json_int_t)p->dev[k].budget));
		json_object_set_new(o, "output", json_boolean(p->dev[k].output));
		if (p->dev[k].rpc[0] != '\0')
			json_object_set_new(o, "rpc", json_string(p->dev[k].rpc));
		json_array_append_new(a, o);
	}
	if (p->n_dev == 0 && v->has_dev) {
		struct plan_usage none = { 0 };
		json_t *o = model_usage_json(v->dev_id, &none, 0);
		json_object_set_new(o, "id", json_string(v->dev_id));
		json_array_append_new(a, o);
	}
	json_array_append_new(a, model_usage_json("cpu", &p->cpu, 1));
	return a;
}

/* The answer for model id: e planned as pv over the devices, v the first device, with
 * the members of live (the learned overhead, every accelerator). New object. */
static json_t *budget_json(struct api *a, const char *id, const struct est *e,
    const struct sched_preview *pv, const struct bview *v, json_t *evict, json_t *live)
{
	const struct plan_multi *p = &pv->plan;
	json_t *args = json_array(), *layers = json_array();
	for (size_t i = 0; i < p->n_args; i++)
		json_array_append_new(args, json_string(p->args[i]));
	for (uint32_t l = 0; l < e->a.n_layer; l++)
		json_array_append_new(layers, json_pack("{s:i,s:I,s:I,s:I}", "layer", (int)l,
		    "weight_bytes", (json_int_t)e->layer[l].weights, "expert_bytes",
		    (json_int_t)e->layer[l].exps, "kv_bytes", (json_int_t)e->layer[l].kv));
	const struct device_info *gpu = v->gpu;
	json_t *r = json_pack("{s:s,s:i,s:b}", "model", id, "ctx", (int)e->n_ctx, "fits",
	    p->fits);
	json_object_set_new(r, "device", v->has_dev ?
	    json_pack("{s:s,s:s,s:I,s:I,s:I,s:I}", "id", v->dev_id, "name",
	    gpu && !v->rpc[0] ? gpu->name : "ggml-rpc-server", "total_bytes",
	    (json_int_t)v->total, "free_bytes", (json_int_t)(gpu && !v->rpc[0] ?
	    gpu->now.free : v->total), "reserve_bytes", (json_int_t)a->env.cfg->reserve,
	    "budget_bytes", (json_int_t)v->budget) : json_null());
	if (v->has_dev)
		json_object_set_new(json_object_get(r, "device"), "learned_overhead_bytes",
		    json_integer((json_int_t)v->ovh));
	json_object_update(r, live);
	json_object_set_new(r, "components", json_pack("{s:I,s:I,s:I,s:I,s:o}", "input_bytes",
	    (json_int_t)e->input_bytes, "output_bytes", (json_int_t)e->output_bytes,
	    "weight_bytes", (json_int_t)e->weights_total, "kv_bytes", (json_int_t)e->kv_total,
	    "layers", layers));
	json_object_set_new(r, "plan", json_pack("{s:i,s:i,s:i,s:b,s:o,s:o}", "gpu_layers",
	    p->ngl, "layers", (int)e->a.n_layer + 1, "n_cpu_moe", p->n_cpu_moe, "split",
	    p->split, "args", args, "devices", plan_devices_json(p, v, live)));
	json_object_set_new(r, "fully_on_device_if_free", json_boolean(pv->fits_if_free));
	json_object_set_new(r, "would_evict", p->fits && p->ngl == (int)e->a.n_layer + 1 ?
	    json_array() : json_incref(evict));
	if (p->reason[0] != '\0')
		json_object_set_new(r, "reason", json_string(p->reason));
	return r;
}

/* The memo key of an answer: everything it is made of besides the header. New. */
static char *memo_key(struct api *a, const char *id, long long ctx, const struct bview *v,
    const char *evict, const char *live, const char *mmproj, const char *devs)
{
	return xasprintf("%s|%lld|%d|%s|%llu|%llu|%s|%s|%llu|%llu|%s|%s|%s|%s", id, ctx, v->has_dev,
	    v->dev_id, (unsigned long long)v->total, (unsigned long long)v->budget, v->rpc,
	    v->gpu ? v->gpu->name : "", (unsigned long long)(v->gpu ? v->gpu->now.free : 0),
	    (unsigned long long)a->env.cfg->reserve, evict ? evict : "", live ? live : "",
	    mmproj ? mmproj : "", devs);
}

/* The answer for model id (its file at path, kept as k) with context ctx (0: the
 * default, as a load gets: model.h) and v: a new object, or NULL after answering. */
static json_t *budget_make(struct api *a, struct evhttp_request *req, const char *id,
    const char *path, long long ctx, const struct kept *k, const struct kept *mk,
    const struct bview *v, json_t *evict, json_t *live)
{
	char err[1024], msg[1024];
	struct est_opts eo;
	est_defaults(&eo);
	eo.n_ctx = (uint32_t)ctx;
	/* a load takes the linked projector along (the scheduler's plan) */
	struct est_clip clip;
	if (mk != NULL && est_clip_read(mk->g, eo.flash_attn, &clip, msg, sizeof msg) < 0) {
		reply_error(req, 409, "model_unreadable", "%s: %s", mk->path, msg);
		return NULL;
	}
	if (mk != NULL)
		est_clip_apply(&clip, &eo);
	struct est e;
	if (model_estimate_open(k->g, &eo, &e, msg, sizeof msg) < 0) {
		reply_error(req, 409, "model_unreadable", "%s: %s", path, msg);
		return NULL;
	}
	/* planned as the scheduler would plan a load now: over every device */
	struct sched_opts so = { .ctx = (uint32_t)ctx };
	struct sched_preview pv;
	if (sched_preview(a->env.sched, &e, &so, mk != NULL ? mk->path : NULL, &pv, err,
	    sizeof err) < 0) {
		reply_error(req, 409, "model_unplannable", "%s: %s", id, err);
		est_free(&e);
		return NULL;
	}
	json_t *r = budget_json(a, id, &e, &pv, v, evict, live);
	plan_multi_free(&pv.plan);
	est_free(&e);
	return r;
}

/* Answers req for model id (its file at path, kept as k; its projector kept as mk, or
 * NULL) with context ctx. On the loop, no file read; the same inputs as the last
 * answer: the same bytes at once. */
static void budget_answer(struct api *a, struct evhttp_request *req, const char *id,
    const char *path, long long ctx, struct kept *k, const struct kept *mk)
{
	struct bview v;
	budget_view(a, &v);
	json_t *evict = evictable(a, v.gpu);
	/* what changes without the plan changing: how the overhead was learned, and every
	 * device loads may use with what the resident models hold there */
	json_t *lo = v.has_dev ? sched_learned_json(a->env.sched, v.dev_id) : NULL;
	json_t *live = json_pack("{s:o,s:o}", "learned_overhead", lo ? lo : json_null(),
	    "accelerators", sched_devices_json(a->env.sched));
	char *ev = json_dumps(evict, JSON_COMPACT | JSON_PRESERVE_ORDER);
	char *lv = json_dumps(live, JSON_COMPACT | JSON_PRESERVE_ORDER);
	char *mkey = mk != NULL ? xasprintf("%s|%lld|%lld.%ld", mk->path, (long long)mk->size,
	    (long long)mk->mtime.tv_sec, mk->mtime.tv_nsec) : NULL;
	/* every device's budget, learned overhead, RPC server served, and the split */
	struct sched_opts so = { .ctx = (uint32_t)ctx };
	char *devs = sched_preview_key(a->env.sched, &so);
	char *key = memo_key(a, id, ctx, &v, ev, lv, mkey, devs);
	free(devs);
	free(ev);
	free(lv);
	free(mkey);
	if (k->memo_key != NULL && strcmp(k->memo_key, key) == 0) {
		reply_json_text(req, 200, k->memo_body, strlen(k->memo_body));
		free(key);
		json_decref(evict);
		json_decref(live);
		return;
	}
	json_t *r = budget_make(a, req, id, path, ctx, k, mk, &v, evict, live);
	json_decref(evict);
	json_decref(live);
	char *body = r ? json_dumps(r, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	if (body == NULL) {
		free(key);
		if (r != NULL)
			reply_json(req, 200, r); /* answers 500: it cannot be encoded */
		return;
	}
	json_decref(r);
	free(k->memo_key);
	free(k->memo_body);
	k->memo_key = key;
	k->memo_body = body;
	reply_json_text(req, 200, body, strlen(body));
}

/* ---- parses off the loop ---- */

static void budget_try(struct api *a, struct evhttp_request *req, const char *id,
    long long ctx);

static void *parse_worker(void *arg)
{
	struct bjob *j = arg;
	j->g = gguf_open(j->path, j->err, sizeof j->err);
	ssize_t w;
	do
		w = write(j->b->pipe[1], &j, sizeof j);
	while (w < 0 && errno == EINTR);
	return NULL;
}

static void waiter_closed(struct evhttp_connection *evcon, void *arg)
{
	struct bwait *w = arg;
	w->req = NULL;   /* libevent frees the request with its connection */
	w->evcon = NULL;
}

static void job_free(struct bjob *j)
{
	while (j->waiters != NULL) {
		struct bwait *w = j->waiters;
		j->waiters = w->next;
		if (w->evcon != NULL)
			httpconn_on_close(w->evcon, NULL, NULL);
		free(w);
	}
	gguf_close(j->g);
	free(j->path);
	free(j);
}

/* A worker finished: its header is kept and its waiters answered. */
static void parse_done(evutil_socket_t fd, short ev, void *arg)
{
	struct api_budget *b = arg;
	struct bjob *j;
	if (read(fd, &j, sizeof j) != (ssize_t)sizeof j)
		return;
	pthread_join(j->thread, NULL);
	for (struct bjob **p = &b->jobs; *p != NULL; p = &(*p)->next)
		if (*p == j) {
			*p = j->next;
			break;
		}
	struct kept *k = j->g != NULL ? kept_add(b, j) : NULL;
	for (struct bwait *w = j->waiters; w != NULL; w = w->next) {
		if (w->req == NULL)
			continue;
		httpconn_on_close(w->evcon, NULL, NULL);
		w->evcon = NULL;
		if (k == NULL)
			reply_error(w->req, 409, "model_unreadable", "%s", j->err);
		else
			budget_try(b->a, w->req, w->id, w->ctx); /* its projector may be next */
		w->req = NULL;
	}
	job_free(j);
}

/* req waits for path's parse (one under way, or a new one). 0, or -1 (no thread). */
static int parse_wait(struct api_budget *b, struct evhttp_request *req, const char *id,
    long long ctx, const char *path, const struct stat *st)
{
	struct bjob *j = b->jobs;
	while (j != NULL && strcmp(j->path, path) != 0)
		j = j->next;
	if (j == NULL) {
		j = xcalloc(1, sizeof *j);
		j->b = b;
		j->path = xstrdup(path);
		j->size = st->st_size;
		j->mtime = st->st_mtim;
		int rc = pthread_create(&j->thread, NULL, parse_worker, j);
		if (rc != 0) {
			log_error("/vram/budget: cannot start a thread: %s", strerror(rc));
			job_free(j);
			return -1;
		}
		j->next = b->jobs;
		b->jobs = j;
	}
	struct bwait *w = xcalloc(1, sizeof *w);
	w->req = req;
	w->evcon = evhttp_request_get_connection(req);
	snprintf(w->id, sizeof w->id, "%s", id);
	w->ctx = ctx;
	w->next = j->waiters;
	j->waiters = w;
	if (w->evcon != NULL)
		httpconn_on_close(w->evcon, waiter_closed, w);
	return 0;
}

/* The kept header of path, or NULL after req was answered (an error) or set to wait
 * for its parse (*waits 1). */
static struct kept *kept_or_wait(struct api *a, struct evhttp_request *req, const char *id,
    long long ctx, const char *path, int *waits)
{
	struct stat st;
	struct kept *k;
	if (stat(path, &st) < 0) {
		/* gguf_open's words for a file that is gone */
		char err[GGUF_ERR_LEN + 4096];
		struct gguf *none = gguf_open(path, err, sizeof err);
		gguf_close(none);
		reply_error(req, 409, "model_unreadable", "%s", none ? "the file changed" : err);
	} else if ((k = kept_find(a->budget, path, &st)) != NULL) {
		return k;
	} else if (parse_wait(a->budget, req, id, ctx, path, &st) < 0) {
		reply_error(req, 500, "internal", "cannot start a thread");
	} else {
		*waits = 1;
	}
	return NULL;
}

/* Answers req for model id with context ctx once its header and its linked projector's
 * are kept; until then req waits for the parse of the one missing (and comes back). */
static void budget_try(struct api *a, struct evhttp_request *req, const char *id,
    long long ctx)
{
	struct reg_model m;
	if (registry_model_get(a->env.reg, id, &m) < 0) {
		reply_error(req, 404, "model_not_found", "no local model with id '%s'", id);
		return;
	}
	const char *path = m.path, *mm = m.mmproj;
	int waits = 0;
	struct kept *k = NULL, *mk = NULL;
	if ((k = kept_or_wait(a, req, id, ctx, path, &waits)) != NULL &&
	    (mm == NULL || (mk = kept_or_wait(a, req, id, ctx, mm, &waits)) != NULL))
		budget_answer(a, req, id, path, ctx, k, mk);
	registry_model_free(&m);
}

/* ---- the route ---- */

void api_budget_route(struct api *a, struct evhttp_request *req, const char *arg)
{
	char id[MAX_ID + 1], cs[16];
	long long ctx = 0;
	int qm = api_query_param(req, "model", id, sizeof id);
	int qc = api_query_param(req, "ctx", cs, sizeof cs);
	if (qm <= 0) {
		reply_error(req, 400, "bad_request", qm < 0 ? "model: id too long" :
		    "model=ID is required (e.g. /vram/budget?model=ID&ctx=8192)");
		return;
	}
	if (qc < 0 || (qc == 1 && util_parse_int(cs, 1, MODEL_MAX_CTX, &ctx) < 0)) {
		reply_error(req, 400, "bad_request", "ctx: a context size in 1..16777216");
		return;
	}
	budget_try(a, req, id, ctx);
}

struct api_budget *api_budget_new(struct api *a)
{
	struct api_budget *b = xcalloc(1, sizeof *b);
	b->a = a;
	if (pipe2(b->pipe, O_CLOEXEC) < 0) {
		free(b);
		return NULL;
	}
	b->ev = event_new(a->env.base, b->pipe[0], EV_READ | EV_PERSIST, parse_done, b);
	if (b->ev == NULL || event_add(b->ev, NULL) < 0) {
		api_budget_free(b);
		return NULL;
	}
	return b;
}

void api_budget_free(struct api_budget *b)
{
	if (b == NULL)
		return;
	/* parses under way finish first; their waiters are gone with the server */
	while (b->jobs != NULL) {
		struct bjob *j = b->jobs, *done;
		pthread_join(j->thread, NULL);
		if (read(b->pipe[0], &done, sizeof done) < 0)
			log_warnx("/vram/budget: %s", strerror(errno));
		b->jobs = j->next;
		for (struct bwait *w = j->waiters; w != NULL; w = w->next)
			w->evcon = NULL;   /* the connections are gone */
		job_free(j);
	}
	for (size_t i = 0; i < BUDGET_KEEP; i++)
		if (b->kept[i].path != NULL)
			kept_drop(&b->kept[i]);
	if (b->ev != NULL)
		event_free(b->ev);
	close(b->pipe[0]);
	close(b->pipe[1]);
	free(b);
}
