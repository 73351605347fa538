/*
 * model: the one way a model file becomes an estimate, and the one way a plan's use
 * of a device is written as JSON (see model.h).
 */
#include "model.h"

#include <stdio.h>

int model_estimate_open(const struct gguf *g, const struct est_opts *o, struct est *e,
    char *err, size_t errlen)
{
	struct est_opts eo = *o;
	if (est_build(g, &eo, e, err, errlen) < 0)
		return -1;
	if (o->n_ctx != 0 || e->a.n_ctx_train <= MODEL_DEFAULT_CTX)
		return 0;
	/* no context asked for and a long training context: the default cap */
	est_free(e);
	eo.n_ctx = MODEL_DEFAULT_CTX;
	return est_build(g, &eo, e, err, errlen);
}

int model_estimate(const char *path, const struct est_opts *o, struct gguf **g,
    struct est *e, char *err, size_t errlen)
{
	*g = gguf_open(path, err, errlen);
	if (*g == NULL)
		return -1;
	char msg[1024];
	if (model_estimate_open(*g, o, e, msg, sizeof msg) < 0) {
		snprintf(err, errlen, "%s: %s", path, msg);
		gguf_close(*g);
		*g = NULL;
		return -1;
	}
	return 0;
}

json_t *model_usage_json(const char *name, const struct plan_usage *u, int cpu)
{
	json_t *o = json_pack("{s:s,s:I,s:I,s:I,s:I,s:I}", "name", name, "model_bytes",
	    (json_int_t)u->model, "kv_bytes", (json_int_t)u->kv, "compute_bytes",
	    (json_int_t)u->compute, "repack_bytes", (json_int_t)u->repack, "total_bytes",
	    (json_int_t)u->total);
	if (cpu)
		json_object_set_new(o, "mapped_bytes", json_integer((json_int_t)u->mapped));
	return o;
}

int model_mmproj(const char *path, struct est_opts *o, struct est_clip *c, char *err,
    size_t errlen)
{
	struct est_clip tmp;
	if (c == NULL)
		c = &tmp;
	char msg[GGUF_ERR_LEN + 256];
	struct gguf *g = gguf_open(path, msg, sizeof msg);
	if (g == NULL) {
		snprintf(err, errlen, "%s", msg);
		return -1;
	}
	int rc = est_clip_read(g, o->flash_attn, c, msg, sizeof msg);
	gguf_close(g);
	if (rc < 0) {
		snprintf(err, errlen, "%s: %s", path, msg);
		return -1;
	}
	est_clip_apply(c, o);
	return 0;
}
