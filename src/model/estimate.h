/*
 * estimate: how much memory a model needs, by component, read from its GGUF header.
 *
 * Components are the input layer (token embeddings), each repeating layer (its dense
 * weights and, for mixture-of-experts models, its expert tensors apart), the output
 * layer, the KV cache of each layer, and a multimodal projector. Sizes follow what the
 * pinned llama.cpp release allocates (docs/estimator.md): weights are the tensors' own
 * sizes, KV cells are the context padded to 256 (sliding-window layers keep fewer). The
 * compute buffers are not here: they depend on where the layers run, so the planner
 * computes them for each placement (plan.h, plan_usage_for), from a model of llama.cpp's
 * worst-case graph.
 */
#ifndef MLO_ESTIMATE_H
#define MLO_ESTIMATE_H

#include <stddef.h>
#include <stdint.h>

#include "arch.h"
#include "gguf.h"

struct est_opts {
	uint32_t n_ctx;       /* 0: the model's training context */
	uint32_t type_k;      /* ggml type of the K cache (default F16) */
	uint32_t type_v;
	uint32_t n_ubatch;    /* 512 */
	uint32_t n_batch;     /* 2048 */
	uint32_t n_seq;       /* llama-server slots sharing one unified cache (4) */
	int flash_attn;       /* -1 auto, 0 off, 1 on */
	uint64_t mmproj_bytes; /* projector weights, when the model has one */
	uint64_t mmproj_compute; /* its encoder's compute buffer on the backend that runs
	                          * it (est_clip_read) */
	uint64_t mmproj_input;   /* the input image the CPU holds beside it when that
	                          * backend is a device (0 when the encoder runs on the CPU) */
};

struct est_layer {
	uint64_t weights;     /* all tensors of blk.N, experts included */
	uint64_t exps;        /* the expert tensors (*_exps) alone */
	uint64_t kv;          /* K and V cache, and the recurrent state (rs) */
	uint64_t rs;          /* recurrent state alone (llama.cpp's RS buffer) */
};

struct est {
	struct arch_info a;
	struct est_opts o;
	uint32_t n_ctx;           /* after padding */
	uint32_t kv_cells, kv_cells_swa;
	uint64_t input_bytes;     /* token embeddings and other tensors outside layers */
	uint64_t output_bytes;    /* output head and its norm (a copy of the embeddings when tied) */
	struct est_layer *layer;  /* n_layer entries */
	uint64_t weights_total, kv_total;
	int moe_bias;             /* experts carry biases (*_exps.bias, gpt-oss): their
	                           * matrix products are followed by ggml_add_id */
	int swa;                  /* some layers slide: llama.cpp builds a second KQ mask */
	int generic;              /* the architecture is not one the rules were checked on:
	                           * planned with the generic transformer rules and a
	                           * margin (EST_GENERIC_MARGIN) on the compute buffers */
	const struct gguf *g;     /* borrowed: the model the estimate was made from */
};

/* Compute buffers of an architecture planned with the generic rules are increased by
 * 1/EST_GENERIC_MARGIN (25%): llama.cpp's graphs for the architectures checked differ
 * from the generic rule by less than that (docs/estimator.md). */
/* The context of an estimate when none is asked for and the model states no training
 * context, and the cap model.c puts on a training context when none is asked for
 * (MODEL_DEFAULT_CTX); and the largest context anyone may ask for (llama.cpp's own
 * limits are far below). */
#define EST_DEFAULT_CTX 8192
#define EST_MAX_CTX (1u << 24)
#define EST_GENERIC_MARGIN 4

/* Fills o with llama-server's defaults. */
void est_defaults(struct est_opts *o);
/* Builds the estimate of g (borrowed; must outlive e). Returns 0, or -1 with err. */
int est_build(const struct gguf *g, const struct est_opts *o, struct est *e, char *err,
    size_t errlen);
void est_free(struct est *e);
/* Parses a cache type name ("f16", "q8_0", ...) into a ggml type. Returns 0 or -1. */
int est_cache_type(const char *name, uint32_t *type);
/* The name llama-server takes for cache type `type` ("q8_0"), or NULL if it takes none. */
const char *est_cache_name(uint32_t type);
/* 1 if llama.cpp puts tensor n of an arch model in the output layer. */
int est_output_tensor(const char *arch, const char *n);
/* Bytes a tensor takes in a backend buffer (its size padded to the alignment). */
uint64_t est_tensor_bytes(const struct gguf_tensor *t);

/*
 * The encoder of a multimodal projector (estimate_clip.c), as tools/mtmd/clip.cpp
 * reserves it at load: weights in one buffer on the backend that runs it, and the
 * compute buffer of its graph for the warmup image (or audio) size.
 */
struct est_clip {
	char proj_type[32];       /* clip.projector_type */
	int audio;                /* an audio encoder (else vision) */
	int generic;              /* a projector type whose graph was not checked: the
	                           * ViT rule with the generic margin (EST_GENERIC_MARGIN) */
	uint32_t warmup;          /* warmup image side in pixels (audio: mel frames) */
	uint32_t n_pos, n_embd, n_ff, n_head;
	uint64_t weights;         /* all tensors, padded as in a backend buffer */
	uint64_t compute;         /* the compute buffer where the encoder runs */
	uint64_t input;           /* the raw input batch, on the CPU when it runs on a device */
};

/* Reads projector g (general.architecture "clip"); flash_attn as in est_opts (-1 auto:
 * on, as clip.cpp's warmup finds it supported on the CPU, CUDA and RPC). Returns 0, or
 * -1 with err when g is not a projector. */
int est_clip_read(const struct gguf *g, int flash_attn, struct est_clip *c, char *err,
    size_t errlen);
/* Copies the projector's weights and buffers into o. */
void est_clip_apply(const struct est_clip *c, struct est_opts *o);

#endif
