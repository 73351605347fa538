/*
 * estimate: memory per component. See estimate.h and docs/estimator.md.
 */
#include "estimate.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUF_ALIGN 32 /* ggml CPU and RPC buffers pad each tensor to this */
#define PAD(x, n) (((x) + (n) - 1) / (n) * (n))

void est_defaults(struct est_opts *o)
{
	memset(o, 0, sizeof *o);
	o->type_k = o->type_v = GGUF_GGML_F16;
	o->n_ubatch = 512;
	o->n_batch = 2048;
	o->n_seq = 4;
	o->flash_attn = -1;
}

/* The KV cache types llama-server takes for --cache-type-k/-v (kv_cache_types in
 * common/arg.cpp of the pinned release), by the names it takes them under. The one
 * table: est_cache_type reads a name, est_cache_name writes one (plan.c's arguments). */
static const struct {
	const char *name;
	uint32_t type;
} cache_types[] = {
	{ "f32", GGUF_GGML_F32 }, { "f16", GGUF_GGML_F16 }, { "bf16", GGUF_GGML_BF16 },
	{ "q8_0", GGUF_GGML_Q8_0 }, { "q4_0", GGUF_GGML_Q4_0 }, { "q4_1", GGUF_GGML_Q4_1 },
	{ "iq4_nl", GGUF_GGML_IQ4_NL }, { "q5_0", GGUF_GGML_Q5_0 }, { "q5_1", GGUF_GGML_Q5_1 },
};

int est_cache_type(const char *name, uint32_t *type)
{
	for (size_t i = 0; i < sizeof cache_types / sizeof cache_types[0]; i++) {
		if (strcasecmp(name, cache_types[i].name) == 0) {
			*type = cache_types[i].type;
			return 0;
		}
	}
	return -1;
}

const char *est_cache_name(uint32_t type)
{
	for (size_t i = 0; i < sizeof cache_types / sizeof cache_types[0]; i++)
		if (cache_types[i].type == type)
			return cache_types[i].name;
	return NULL;
}

uint64_t est_tensor_bytes(const struct gguf_tensor *t)
{
	return PAD(t->size, BUF_ALIGN);
}

int est_output_tensor(const char *arch, const char *n)
{
	/* lfm2 names its output norm token_embd_norm (LLM_TENSOR_OUTPUT_NORM_LFM2) */
	if (strcmp(arch, "lfm2") == 0 && strncmp(n, "token_embd_norm.", 16) == 0)
		return 1;
	return strncmp(n, "output.", 7) == 0 || strncmp(n, "output_norm.", 12) == 0;
}

int est_build(const struct gguf *g, const struct est_opts *o, struct est *e, char *err,
    size_t errlen)
{
	memset(e, 0, sizeof *e);
	if (arch_read(g, &e->a, err, errlen) < 0)
		return -1;
	e->g = g;
	e->o = *o;
	e->generic = !arch_checked(e->a.arch);
	/* llama-server runs an embedding model's whole input in one micro-batch: it lowers
	 * n_batch to n_ubatch (tools/server/server.cpp), and so do we */
	if (e->a.pooling != 0 && e->o.n_batch > e->o.n_ubatch)
		e->o.n_batch = e->o.n_ubatch;
	uint64_t ctx = o->n_ctx ? o->n_ctx : e->a.n_ctx_train;
	if (ctx == 0)
		ctx = EST_DEFAULT_CTX; /* the model states no training context */
	if (ctx > EST_MAX_CTX) {
		snprintf(err, errlen, "context %llu is larger than %u", (unsigned long long)ctx,
		    EST_MAX_CTX);
		arch_free(&e->a);
		return -1;
	}
	uint32_t n_seq = o->n_seq ? o->n_seq : 1;
	e->n_ctx = (uint32_t)PAD(ctx, 256);
	e->kv_cells = e->n_ctx;
	uint64_t swa = (uint64_t)e->a.n_swa * n_seq + o->n_ubatch;
	e->kv_cells_swa = (uint32_t)PAD(swa < e->kv_cells ? swa : e->kv_cells, 256);

	uint32_t n = e->a.n_layer;
	e->layer = xcalloc(n, sizeof *e->layer);
	int has_output = 0;
	uint64_t tok_embd = 0;
	for (uint64_t i = 0; i < g->n_tensors; i++) {
		const struct gguf_tensor *t = &g->tensors[i];
		uint64_t b = est_tensor_bytes(t);
		int l = arch_tensor_layer(t->name);
		if (l >= 0 && (uint32_t)l < n) {
			e->layer[l].weights += b;
			if (strstr(t->name, "_exps") != NULL)
				e->layer[l].exps += b;
			if (strstr(t->name, "_exps.bias") != NULL)
				e->moe_bias = 1;
		} else if (est_output_tensor(e->a.arch, t->name)) {
			e->output_bytes += b;
			has_output |= strncmp(t->name, "output.weight", 13) == 0;
		} else {
			e->input_bytes += b;
			if (strcmp(t->name, "token_embd.weight") == 0)
				tok_embd = b;
		}
		e->weights_total += b;
	}
	if (!has_output)
		e->output_bytes += tok_embd; /* llama.cpp duplicates the embeddings as output */
	for (uint32_t l = 0; l < n; l++) {
		if (e->a.is_recr[l]) {
			/* llama_memory_recurrent: F32 rows of n_embd_r + n_embd_s for each of
			 * max(1, n_seq_max) sequences, on the layer's device like a KV cache */
			e->layer[l].rs = (e->a.n_embd_r + e->a.n_embd_s) * 4 * n_seq;
			e->layer[l].kv += e->layer[l].rs;
			e->kv_total += e->layer[l].rs;
		}
		if (!e->a.has_kv[l])
			continue;
		e->swa |= e->a.is_swa[l];
		uint64_t cells = e->a.is_swa[l] ? e->kv_cells_swa : e->kv_cells;
		e->layer[l].kv += cells * (gguf_row_size(o->type_k, e->a.n_embd_k_gqa[l]) +
		    gguf_row_size(o->type_v, e->a.n_embd_v_gqa[l]));
		e->kv_total += e->layer[l].kv;
	}
	return 0;
}

void est_free(struct est *e)
{
	arch_free(&e->a);
	free(e->layer);
	e->layer = NULL;
}
