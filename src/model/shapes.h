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
	/* fields below default to 0 (a plain llama/qwen layer) */
	int layout;                /* SHAPE_LAYOUT_*: extra tensors of the architecture */
	uint32_t n_swa;            /* <arch>.attention.sliding_window; 0: none */
};

/* Per-architecture tensor tables beyond the llama/qwen layer. */
enum {
	SHAPE_LAYOUT_PLAIN = 0,
	SHAPE_LAYOUT_GPTOSS,       /* gpt-oss: attention sinks, biases, post-attention norm,
	                            * experts with biases; SWA on every other layer */
	SHAPE_LAYOUT_GEMMA3,       /* gemma3: q/k norms, post-attention and post-FFN norms;
	                            * SWA on 5 of every 6 layers */
	SHAPE_LAYOUT_MAMBA2,       /* mamba2, pure recurrent: d_inner = 2 n_embd, d_state =
	                            * head_dim, n_head heads (time-step rank), 1 group,
	                            * conv kernel 4; no attention, no FFN */
	SHAPE_LAYOUT_LFM2,         /* lfm2, hybrid: every third layer attention (KV), the
	                            * others short convolutions (recurrent state), l_cache 3 */
	SHAPE_LAYOUT_DEEPSEEK2,    /* deepseek2 with latent attention as this release stores
	                            * it: head_dim is the no-rope and V head size, rope dims
	                            * head_dim / 2, kv_lora_rank 2 x head_dim, q_lora_rank
	                            * 3 x head_dim; first layer dense, one shared expert */
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

/*
 * Multimodal projectors (shapes_clip.c): a vision encoder and its projector in one GGUF
 * of architecture "clip", as llama.cpp's convert script writes them and tools/mtmd's
 * clip.cpp loads them with --mmproj. Gemma-3's projector (SigLIP ViT, average pool by
 * n_merge per side, RMS norm, a linear projection into the text model's n_embd).
 */
struct shape_mmproj {
	const char *name;
	const char *about;
	const char *proj_type;     /* clip.projector_type */
	uint32_t image_size, patch_size, n_layer, n_embd, n_ff, n_head, n_merge;
	uint32_t n_embd_text;      /* the text model's n_embd (mm.input_projection's rows) */
	int random;
	const char *quant;         /* F32 or F16 for the 2-D weights */
};

extern const struct shape_mmproj shapes_mmproj_all[];
/* The projector shape named name, or NULL. */
const struct shape_mmproj *shapes_mmproj_find(const char *name);
/* Writes projector s to path; fill -1: the shape's default. Returns 0 or -1 with err. */
int shapes_mmproj_write(const struct shape_mmproj *s, int fill, uint64_t seed, const char *path,
    char *err, size_t errlen);

#endif
