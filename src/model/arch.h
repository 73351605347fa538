/*
 * arch: the hyperparameters of a model, read from GGUF metadata the way llama.cpp reads
 * them (keys prefixed by general.architecture; per-layer values given as scalars or as
 * arrays; sliding-window layout from the file or from llama.cpp's per-architecture
 * default), plus the labels people look for: parameters, quantization, size class.
 */
#ifndef MLO_ARCH_H
#define MLO_ARCH_H

#include <stdint.h>

#include "gguf.h"

#define ARCH_MAX_LAYERS 4096

struct arch_info {
	char arch[64];
	char name[128];
	char size_label[32];
	char quant[32];             /* "Q4_K_M" from general.file_type, else the dominant type */
	uint32_t n_layer;
	uint32_t n_embd;
	uint32_t n_vocab;
	uint64_t n_ctx_train;
	uint32_t n_expert, n_expert_used;
	uint32_t n_ff_exp;          /* width of one expert's FFN */
	uint32_t n_swa;             /* sliding window in tokens; 0 when none */
	uint32_t pooling;           /* <arch>.pooling_type, llama.cpp's llama_pooling_type:
	                             * 1 mean, 2 cls, 3 last, 4 rank make it an embedding
	                             * model; 0 when absent, none or unknown */
	uint64_t n_params;          /* elements of all tensors */
	uint64_t model_bytes;       /* bytes of all tensors */
	/* per layer; arrays of n_layer, heap, freed by arch_free */
	uint32_t *n_head, *n_head_kv, *n_ff;
	uint32_t *n_embd_k_gqa, *n_embd_v_gqa; /* K and V widths per cell */
	uint8_t *is_swa;
	uint8_t *has_kv;            /* layer keeps a KV cache (attention layer) */
	uint8_t *is_recr;           /* layer keeps a recurrent state (RS) instead */
	/* recurrent state per sequence, in F32 values (llama_hparams::n_embd_r, n_embd_s):
	 * the convolution's last columns and the SSM state */
	uint64_t n_embd_r, n_embd_s;
	uint32_t ssm_d_conv, ssm_d_inner, ssm_d_state, ssm_n_group, ssm_dt_rank;
	uint32_t shortconv_l_cache; /* LFM2's short convolution; 0 when none */
	int mla;                    /* latent attention: the KV cache holds K (the latent) only */
	uint32_t n_expert_shared;   /* shared experts of a MoE layer (expert_shared_count) */
	uint32_t n_dense_lead;      /* MoE models whose first layers are dense
	                             * (<arch>.leading_dense_block_count, deepseek2) */
};

/* Fills info from g. Returns 0, or -1 with a message in err when the metadata a plan
 * needs is missing or out of range. */
int arch_read(const struct gguf *g, struct arch_info *info, char *err, size_t errlen);
void arch_free(struct arch_info *info);
/* Human label of llama.cpp's general.file_type (LLAMA_FTYPE_*), or NULL. */
const char *arch_ftype_name(int64_t ftype);
/* llama-server's --pooling name of a pooling type ("mean", "cls", "last", "rank"), or
 * NULL for 0 (not an embedding model). */
const char *arch_pooling_name(uint32_t pooling);
/* 1 if the estimator's rules were checked against llama.cpp for this architecture
 * (docs/accuracy.md); 0 if it is planned with the generic transformer rules. */
int arch_checked(const char *arch);
/* Layer index of a tensor name "blk.N.*", or -1. */
int arch_tensor_layer(const char *name);

#endif
