/*
 * scan_info: what the folder scan reads in each GGUF file (see scan.c). A candidate is
 * classified as a model or a projector from its header (a known file whose size and
 * mtime did not change is not read); a model is then read again and described: its
 * metadata, the estimate by component (estimate.h), and the fit on each device
 * (plan.h), as the JSON info object of docs/daemon.md. A file that does not read, or
 * that the estimate refuses, becomes an item with the reason.
 */
#include "scan_int.h"
#include "arch.h"
#include "estimate.h"
#include "gguf.h"
#include "model.h"
#include "plan.h"
#include "util.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>


static int known_cmp(const void *a, const void *b)
{
	return strcmp(((const struct scan_known *)a)->path,
	    ((const struct scan_known *)b)->path);
}

static const struct scan_known *find_known(const struct scan_opts *o, const char *path)
{
	if (o->known == NULL || o->n_known == 0)
		return NULL;
	struct scan_known key = { .path = path };
	return bsearch(&key, o->known, o->n_known, sizeof *o->known, known_cmp);
}

/* The reader's message without the "path: " it starts with when it is about path. */
static const char *strip_path(const char *msg, const char *path)
{
	size_t n = strlen(path);
	if (strncmp(msg, path, n) == 0 && msg[n] == ':' && msg[n + 1] == ' ')
		return msg + n + 2;
	return msg;
}

/* A projector's weights and encoder buffers; a file named mmproj* that is not a clip
 * GGUF counts its tensors as weights. */
static void proj_sizes(const struct gguf *g, struct cand *c)
{
	struct est_clip clip;
	char err[256];
	if (est_clip_read(g, -1, &clip, err, sizeof err) == 0) {
		c->proj_bytes = clip.weights;
		c->proj_compute = clip.compute;
		c->proj_input = clip.input;
		return;
	}
	c->proj_bytes = 0;
	for (uint64_t t = 0; t < g->n_tensors; t++)
		c->proj_bytes += est_tensor_bytes(&g->tensors[t]);
}

static json_t *describe_open(const struct scan_opts *o, const struct cand *c,
    const struct gguf *g, char *err, size_t errlen);

/* Whether scan_classify reads c: not when it is known and unchanged. */
static int unchanged(const struct walk *w, const struct cand *c)
{
	const char *name = c->path + c->dirlen + 1;
	if (strncasecmp(name, "mmproj", 6) == 0)
		return 0;
	const struct scan_known *k = find_known(w->o, c->path);
	return k != NULL && k->size == c->size && k->mtime_ns == c->mtime_ns;
}

void scan_prefetch(struct walk *w, const struct cand *c)
{
	if (!unchanged(w, c))
		gguf_prefetch(c->path, &w->buf);
}

/* Model or projector. Reads the header unless the file is known and unchanged. A model
 * is described from the same read, as if it had no projector: projectors are linked
 * only once every file is classified, and the few models that get one are read again
 * (holding every header meanwhile would not scale). */
void scan_classify(struct walk *w, struct cand *c)
{
	char err[GGUF_ERR_LEN + PATH_MAX];
	const char *name = c->path + c->dirlen + 1;
	int by_name = strncasecmp(name, "mmproj", 6) == 0;
	if (unchanged(w, c)) {
		c->unchanged = 1;
		return;
	}
	struct gguf *g = gguf_open_buf(c->path, &w->buf, err, sizeof err);
	if (g == NULL) {
		c->kind = C_ERROR;
		c->error = xstrdup(strip_path(err, c->path));
		return;
	}
	char arch[64] = "";
	gguf_get_str(g, "general.architecture", arch, sizeof arch);
	if (by_name || strcmp(arch, "clip") == 0) {
		c->kind = C_PROJ;
		proj_sizes(g, c);
	} else {
		c->described = 1;
		c->info = describe_open(w->o, c, g, err, sizeof err);
		if (c->info == NULL)
			c->info_error = xstrdup(strip_path(err, c->path));
	}
	gguf_close(g);
}

static void params_label(uint64_t n, char *buf, size_t len)
{
	if (n >= 1000000000ull)
		snprintf(buf, len, "%.2fB", (double)n / 1e9);
	else
		snprintf(buf, len, "%.1fM", (double)n / 1e6);
}

static json_t *jint(uint64_t v)
{
	return json_integer(v > (uint64_t)INT64_MAX ? INT64_MAX : (json_int_t)v);
}

/* The fit of e on one device (see docs/daemon.md). */
static json_t *fit_entry(const struct est *e, const struct scan_device *d,
    const struct plan_opts *po, uint64_t full)
{
	struct plan p;
	struct plan_device pd;
	char err[256];
	int layers = (int)e->a.n_layer + 1;
	const char *mode = "none";
	int fits = 0, ngl = 0, ncm = 0;
	uint64_t total = full;
	memset(&pd, 0, sizeof pd);
	snprintf(pd.name, sizeof pd.name, "%s", d->id);
	pd.budget = d->budget;
	if (plan_make(e, d->is_cpu ? NULL : &pd, po, &p, err, sizeof err) == 0) {
		if (d->is_cpu) {
			total = p.cpu.total;
			fits = total <= d->budget;
			mode = fits ? "cpu" : "none";
		} else if (p.fits && p.ngl > 0) {
			fits = 1;
			ngl = p.ngl;
			ncm = p.n_cpu_moe;
			total = p.dev.total;
			mode = ngl == layers && ncm == 0 ? "gpu" : "offload";
		}
		plan_free(&p);
	}
	json_t *f = json_object();
	json_object_set_new(f, "device", util_json_str(d->id));
	json_object_set_new(f, "name", util_json_str(d->name));
	json_object_set_new(f, "budget_bytes", jint(d->budget));
	json_object_set_new(f, "fits", json_boolean(fits));
	json_object_set_new(f, "mode", json_string(mode));
	json_object_set_new(f, "gpu_layers", json_integer(ngl));
	json_object_set_new(f, "layers", json_integer(layers));
	json_object_set_new(f, "n_cpu_moe", json_integer(ncm));
	json_object_set_new(f, "total_bytes", jint(total));
	return f;
}

/* Describes the model c, open as g. Returns a new object, or NULL with err. */
static json_t *describe_open(const struct scan_opts *o, const struct cand *c,
    const struct gguf *g, char *err, size_t errlen)
{
	struct est_opts eo;
	struct est e;
	char msg[512];
	est_defaults(&eo);
	eo.n_ctx = o->ctx; /* 0: the default context (model.h) */
	if (c->proj != NULL) {
		eo.mmproj_bytes = c->proj->proj_bytes;
		eo.mmproj_compute = c->proj->proj_compute;
		eo.mmproj_input = c->proj->proj_input;
	}
	if (model_estimate_open(g, &eo, &e, msg, sizeof msg) < 0) {
		snprintf(err, errlen, "%s", msg);
		return NULL;
	}
	const struct arch_info *a = &e.a;
	struct plan_opts po;
	memset(&po, 0, sizeof po);
	po.offload = PLAN_AUTO;
	po.ngl = -1;
	po.mmproj = c->proj ? c->proj->path : NULL;
	struct plan_usage ud, uc;
	plan_usage_for(&e, &po, 1, (int)a->n_layer + 1, 0, &ud, &uc);
	uint64_t layer_bytes = 0, expert_bytes = 0;
	for (uint32_t l = 0; l < a->n_layer; l++) {
		layer_bytes += e.layer[l].weights - e.layer[l].exps;
		expert_bytes += e.layer[l].exps;
	}
	uint64_t total = e.input_bytes + e.output_bytes + layer_bytes + expert_bytes +
	    e.kv_total + ud.compute + eo.mmproj_bytes + eo.mmproj_compute;

	json_t *j = json_object(), *est = json_object(), *fit = json_array();
	char label[32];
	const char *name = c->path + c->dirlen + 1;
	params_label(a->n_params, label, sizeof label);
	if (a->name[0] != '\0')
		json_object_set_new(j, "name", util_json_str(a->name));
	else
		json_object_set_new(j, "name", util_json_strn(name, c->stemlen));
	json_object_set_new(j, "arch", util_json_str(a->arch));
	json_object_set_new(j, "quantization", util_json_str(a->quant));
	json_object_set_new(j, "parameters", jint(a->n_params));
	json_object_set_new(j, "parameters_label", json_string(label));
	json_object_set_new(j, "layers", json_integer(a->n_layer));
	json_object_set_new(j, "context_length", jint(a->n_ctx_train));
	json_object_set_new(j, "experts", json_integer(a->n_expert));
	json_object_set_new(j, "experts_used", json_integer(a->n_expert_used));
	json_object_set_new(j, "embedding", json_boolean(a->pooling != 0));
	json_object_set_new(j, "pooling", a->pooling ? json_string(arch_pooling_name(a->pooling)) :
	    json_null());
	json_object_set_new(j, "file_bytes", jint(c->size));
	json_object_set_new(j, "parts", json_integer(g->n_parts));
	json_object_set_new(j, "mmproj", c->proj ? util_json_str(c->proj->path) : json_null());
	json_object_set_new(est, "ctx", json_integer(e.n_ctx));
	json_object_set_new(est, "input_bytes", jint(e.input_bytes));
	json_object_set_new(est, "output_bytes", jint(e.output_bytes));
	json_object_set_new(est, "layer_bytes", jint(layer_bytes));
	json_object_set_new(est, "expert_bytes", jint(expert_bytes));
	json_object_set_new(est, "kv_bytes", jint(e.kv_total));
	json_object_set_new(est, "compute_bytes", jint(ud.compute));
	json_object_set_new(est, "mmproj_bytes", jint(eo.mmproj_bytes));
	json_object_set_new(est, "mmproj_compute_bytes", jint(eo.mmproj_compute));
	json_object_set_new(est, "total_bytes", jint(total));
	json_object_set_new(j, "estimate", est);
	for (size_t i = 0; i < o->n_devs; i++)
		json_array_append_new(fit, fit_entry(&e, &o->devs[i], &po, total));
	json_object_set_new(j, "fit", fit);
	est_free(&e);
	return j;
}

/* Reads the model at c and describes it. Returns a new object, or NULL with err. */
static json_t *describe(struct walk *w, const struct cand *c, char *err, size_t errlen)
{
	struct gguf *g = gguf_open_buf(c->path, &w->buf, err, errlen);
	if (g == NULL)
		return NULL;
	json_t *j = describe_open(w->o, c, g, err, errlen);
	gguf_close(g);
	return j;
}

static int same_str(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/* Turns the candidates into items; frees their paths or hands them over. */
void scan_describe_all(struct walk *w)
{
	char err[GGUF_ERR_LEN + 2 * PATH_MAX];
	for (size_t i = 0; i < w->n_c; i++) {
		struct cand *c = &w->c[i];
		if (c->kind == C_MODEL && c->unchanged) {
			const struct scan_known *k = find_known(w->o, c->path);
			const char *now = c->proj ? c->proj->path : NULL;
			if (k != NULL && same_str(k->mmproj, now)) {
				scan_add_item(w, c->path, c->size, c->mtime_ns, NULL, NULL, 1);
				c->path = NULL;
				continue;
			}
		}
		if (c->kind == C_MODEL && c->described && c->proj == NULL) {
			/* described from the read that classified it */
			scan_add_item(w, c->path, c->size, c->mtime_ns, c->info_error, c->info, 0);
			c->path = NULL;
			c->info = NULL;
			c->info_error = NULL;
		} else if (c->kind == C_MODEL) {
			json_t *info = describe(w, c, err, sizeof err);
			scan_add_item(w, c->path, c->size, c->mtime_ns, info ? NULL :
			    xstrdup(strip_path(err, c->path)), info, 0);
			c->path = NULL;
		} else if (c->kind == C_ERROR) {
			scan_add_item(w, c->path, c->size, c->mtime_ns, c->error, NULL, 0);
			c->path = NULL;
			c->error = NULL;
		}
	}
}
