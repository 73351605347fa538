/*
 * model: the one way a model file becomes an estimate. The command line (plan), the
 * daemon's /vram/budget, the folder scan (the fit of every model on every device) and
 * the scheduler (a load) all open, default and estimate a model here, so that they
 * agree on what a model needs.
 *
 * The default context, when none is asked for, is the training context capped at
 * MODEL_DEFAULT_CTX tokens: llama-server's own default (the training context) can be
 * 128k or more, which is not what anyone loads by default on a small GPU (Ollama
 * defaults to a few thousand tokens; llama-swap passes what it is told).
 */
#ifndef MLO_MODEL_H
#define MLO_MODEL_H

#include <stddef.h>

#include <jansson.h>

#include "estimate.h"
#include "gguf.h"
#include "plan.h"

/* (estimate.h says where these come from) */
#define MODEL_DEFAULT_CTX EST_DEFAULT_CTX
#define MODEL_MAX_CTX EST_MAX_CTX

/* Opens path and estimates it with o (o->n_ctx 0: the default context above). On
 * success returns 0 with *g (heap: gguf_close) and *e (est_free, before closing *g);
 * on failure -1 with the reason in err (the file's own error, with its path) and
 * nothing to free. */
int model_estimate(const char *path, const struct est_opts *o, struct gguf **g,
    struct est *e, char *err, size_t errlen);

/* Estimates the open model g with o, applying the default context the same way. */
int model_estimate_open(const struct gguf *g, const struct est_opts *o, struct est *e,
    char *err, size_t errlen);

/* The one serialisation of a plan's use of a device (mloffload plan --json, GET
 * /vram/budget): a new {"name", "model_bytes", "kv_bytes", "compute_bytes",
 * "repack_bytes", "total_bytes"} object; the CPU's (cpu 1) adds "mapped_bytes" (the
 * span of the file llama.cpp maps for it, docs/estimator.md). */
json_t *model_usage_json(const char *name, const struct plan_usage *u, int cpu);
/* Reads the projector at path (its encoder: estimate_clip.c) with o->flash_attn and puts
 * its weights and buffers into o; c (may be NULL) gets the details. Returns 0, or -1
 * with err (with the path). */
int model_mmproj(const char *path, struct est_opts *o, struct est_clip *c, char *err,
    size_t errlen);

#endif
