/*
 * shapes: the models mloffload can generate, for tests, demos and benchmarks. Each
 * shape is a real architecture's tensor table (names, shapes, and the quantization mix
 * llama.cpp's quantizer gives a Q4_K_M, Q8_0, F16 or F32 file), with a tokenizer copied
 * from one of llama.cpp's vocab-only GGUF files so that llama-server loads the result.
 * Tiny shapes get random weights and answer requests; large shapes leave their data as
 * a sparse hole, so a "4.9 GB" model costs nothing on disk.
 */
#ifndef MLO_SHAPES_H
#define MLO_SHAPES_H

#include <stddef.h>
#include <stdint.h>

struct shape {
	const char *name;
	const char *arch;          /* general.architecture */
	const char *vocab;         /* llama.cpp models/ggml-vocab-<vocab>.gguf */
	const char *about;
	uint32_t n_layer, n_embd, n_ff, n_head, n_head_kv, head_dim;
	uint32_t n_expert, n_expert_used, n_ff_exp;
	uint32_t n_ctx_train;
	int qkv_bias, qk_norm, tied_output;
	int random;                /* weights filled with random values by default */
	const char *quant;         /* default quantization */
	uint32_t pooling;          /* <arch>.pooling_type: 0 none (a generative model); 1 mean
	                            * makes llama.cpp treat it as an embedding model, 4 rank as
	                            * a reranker (written non-causal) */
};

/* All shapes, terminated by an entry with name NULL. */
extern const struct shape shapes_all[];
/* The shape named name, or NULL. */
const struct shape *shapes_find(const char *name);

struct shapes_opts {
	const char *quant;         /* NULL: the shape's default; F32, F16, Q8_0, Q4_K_M */
	const char *vocab_path;    /* vocab GGUF to copy the tokenizer from */
	int fill;                  /* -1: the shape's default, 0: sparse hole, 1: random */
	uint64_t seed;
	int split;                 /* >1: write that many split parts */
};

/* Writes shape s to path (for split > 1, path must end in -00001-of-0000N.gguf: the
 * parts are written beside it). Returns 0, or -1 with a message in err. */
int shapes_write(const struct shape *s, const struct shapes_opts *o, const char *path,
    char *err, size_t errlen);

/* Path of llama.cpp's vocab file ggml-vocab-<name>.gguf in the cached llama.cpp tree
 * ($MLOFFLOAD_LLAMA_DIR, else the setup script's cache). Heap string; free(). */
char *shapes_vocab_path(const char *name);

#endif
