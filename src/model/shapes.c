/*
 * shapes: generated models. Tensor names and shapes follow llama.cpp's loaders for
 * llama, qwen2 and qwen3moe; the Q4_K_M mix follows llama-quant.cpp (attn_v and
 * ffn_down get Q6_K on the layers use_more_bits() picks, output gets Q6_K, 1-D tensors
 * and the MoE router stay F32).
 */
#include "shapes.h"
#include "gguf.h"
#include "ggufw.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARCH_LAYERS_MAX_SHAPE 256 /* per-layer arrays a generated shape writes */
#define LLAMA_PIN MLO_LLAMA_PIN /* node-llama-cpp version of scripts/setup-llama.sh */

/* Entries may leave the trailing fields (layout, n_swa) out: they default to 0. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
const struct shape shapes_all[] = {
	{ "tiny", "llama", "llama-spm", "2-layer llama, random F32 weights; answers requests",
	  2, 64, 128, 4, 2, 16, 0, 0, 0, 4096, 0, 0, 0, 1, "F32", 0 },
	{ "tiny-embed", "llama", "llama-spm", "tiny with mean pooling: answers /v1/embeddings",
	  2, 64, 128, 4, 2, 16, 0, 0, 0, 4096, 0, 0, 0, 1, "F32", 1 },
	{ "tiny-rerank", "llama", "llama-spm", "tiny reranker (pooling rank, bidirectional): "
	  "answers /v1/rerank", 2, 64, 128, 4, 2, 16, 0, 0, 0, 4096, 0, 0, 0, 1, "F32", 4 },
	{ "tiny-code", "llama", "starcoder", "tiny with a code tokenizer (FIM tokens): answers "
	  "/infill", 2, 64, 128, 4, 2, 16, 0, 0, 0, 4096, 0, 0, 0, 1, "F32", 0 },
	{ "tiny-moe", "qwen3moe", "qwen2", "2-layer qwen3moe, 4 experts, random F32 weights",
	  2, 64, 0, 4, 2, 16, 4, 2, 32, 4096, 0, 1, 0, 1, "F32", 0 },
	{ "small-llama", "llama", "llama-spm", "8-layer llama, n_embd 256",
	  8, 256, 768, 8, 2, 32, 0, 0, 0, 8192, 0, 0, 0, 0, "Q4_K_M", 0 },
	{ "small-qwen2", "qwen2", "qwen2", "6-layer qwen2 with attention biases, n_embd 256",
	  6, 256, 1024, 4, 2, 64, 0, 0, 0, 8192, 1, 0, 1, 0, "Q8_0", 0 },
	{ "small-moe", "qwen3moe", "qwen2", "6-layer qwen3moe, 16 experts of 256, n_embd 256",
	  6, 256, 0, 4, 2, 64, 16, 4, 256, 8192, 0, 1, 0, 0, "Q4_K_M", 0 },
	{ "llama3-8b", "llama", "llama-bpe", "Llama-3.1-8B tensor table",
	  32, 4096, 14336, 32, 8, 128, 0, 0, 0, 131072, 0, 0, 0, 0, "Q4_K_M", 0 },
	{ "llama3.2-1b", "llama", "llama-bpe", "Llama-3.2-1B tensor table (tied output)",
	  16, 2048, 8192, 32, 8, 64, 0, 0, 0, 131072, 0, 0, 1, 0, "Q8_0", 0 },
	{ "qwen2-7b", "qwen2", "qwen2", "Qwen2.5-7B tensor table (attention biases)",
	  28, 3584, 18944, 28, 4, 128, 0, 0, 0, 32768, 1, 0, 0, 0, "Q4_K_M", 0 },
	{ "qwen3moe-30b", "qwen3moe", "qwen2", "Qwen3-30B-A3B tensor table, 128 experts",
	  48, 2048, 6144, 32, 4, 128, 128, 8, 768, 40960, 0, 1, 0, 0, "Q4_K_M", 0 },
	{ "gptoss-20b", "gpt-oss", "qwen2", "gpt-oss-20b tensor table: sinks, SWA 128, MXFP4 experts",
	  24, 2880, 0, 64, 8, 64, 32, 4, 2880, 131072, 1, 0, 0, 0, "MXFP4_MOE", 0,
	  SHAPE_LAYOUT_GPTOSS, 128 },
	{ "gemma3-1b", "gemma3", "gemma-4", "Gemma-3-1B tensor table, SWA 512 on 5 of 6 layers, "
	  "262k vocab", 26, 1152, 6912, 4, 1, 256, 0, 0, 0, 32768, 0, 1, 1, 0, "Q8_0", 0,
	  SHAPE_LAYOUT_GEMMA3, 512 },
	{ "gemma3-4b", "gemma3", "gemma-4", "Gemma-3-4B tensor table, SWA 1024, 262k vocab",
	  34, 2560, 10240, 8, 4, 256, 0, 0, 0, 131072, 0, 1, 1, 0, "Q4_K_M", 0,
	  SHAPE_LAYOUT_GEMMA3, 1024 },
	{ "small-mamba2", "mamba2", "llama-spm", "8-layer mamba2 (recurrent state, no KV), "
	  "n_embd 768, d_state 128", 8, 768, 0, 24, 0, 128, 0, 0, 0, 8192, 0, 0, 1, 0, "Q8_0", 0,
	  SHAPE_LAYOUT_MAMBA2, 0 },
	{ "small-lfm2", "lfm2", "llama-spm", "6-layer lfm2 hybrid: 2 attention layers, 4 short "
	  "convolutions", 6, 1024, 3072, 16, 4, 64, 0, 0, 0, 32768, 0, 1, 1, 0, "Q8_0", 0,
	  SHAPE_LAYOUT_LFM2, 0 },
	{ "small-deepseek2", "deepseek2", "deepseek-llm", "4-layer deepseek2: latent attention "
	  "(MLA), 1 dense layer, 16 experts + 1 shared", 4, 512, 1536, 8, 1, 64, 16, 2, 256, 32768,
	  0, 0, 0, 0, "Q8_0", 0, SHAPE_LAYOUT_DEEPSEEK2, 0 },
	{ NULL, NULL, NULL, NULL, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, NULL, 0, 0, 0 },
};
#pragma GCC diagnostic pop

const struct shape *shapes_find(const char *name)
{
	for (const struct shape *s = shapes_all; s->name != NULL; s++)
		if (strcmp(s->name, name) == 0)
			return s;
	return NULL;
}

struct mix {
	int ftype;      /* LLAMA_FTYPE_* */
	uint32_t base;  /* type of 2-D weights */
};

static int parse_quant(const char *q, struct mix *m)
{
	static const struct { const char *n; int ftype; uint32_t base; } qs[] = {
		{ "F32", 0, GGUF_GGML_F32 }, { "F16", 1, GGUF_GGML_F16 },
		{ "Q8_0", 7, GGUF_GGML_Q8_0 }, { "Q4_K_M", 15, GGUF_GGML_Q4_K },
		{ "MXFP4_MOE", 38, GGUF_GGML_Q8_0 },
	};
	for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
		if (strcmp(q, qs[i].n) == 0) {
			m->ftype = qs[i].ftype;
			m->base = qs[i].base;
			return 0;
		}
	}
	return -1;
}

static int use_more_bits(int i, int n)
{
	return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

/* Type of a 2-D weight, given the mix; falls back to a type whose block fits ne0. */
static uint32_t weight_type(const struct mix *m, const char *kind, int layer, int n_layer,
    int64_t ne0)
{
	uint32_t t = m->base;
	if (m->ftype == 38 && strstr(kind, "_exps") != NULL)
		t = GGUF_GGML_MXFP4; /* gpt-oss's experts; the rest Q8_0 */
	if (m->ftype == 15) {
		if (strcmp(kind, "output") == 0)
			t = GGUF_GGML_Q6_K;
		else if ((strcmp(kind, "attn_v") == 0 || strncmp(kind, "ffn_down", 8) == 0) &&
		    use_more_bits(layer, n_layer))
			t = GGUF_GGML_Q6_K;
	}
	uint32_t blck, bytes;
	gguf_ggml_block(t, &blck, &bytes);
	if (ne0 % blck != 0)
		t = ne0 % 32 == 0 ? GGUF_GGML_Q8_0 : GGUF_GGML_F16;
	if (m->base == GGUF_GGML_F32)
		t = GGUF_GGML_F32;
	return t;
}

struct gen {
	struct ggufw **w;     /* one writer per part */
	int n_parts;
	int n_tensors;
	int total;            /* planned tensor count, for spreading over parts */
	const struct mix *m;
	int n_layer;
};

static void add(struct gen *g, const char *name, const char *kind, int layer, uint32_t nd,
    int64_t ne0, int64_t ne1, int64_t ne2)
{
	int64_t ne[3] = { ne0, ne1, ne2 };
	uint32_t t = nd == 1 || strcmp(kind, "ffn_gate_inp") == 0 || strcmp(kind, "bias") == 0 ||
	    strcmp(kind, "f32") == 0 ? GGUF_GGML_F32 :
	    weight_type(g->m, kind, layer, g->n_layer, ne0);
	int part = g->total > 0 ? g->n_tensors * g->n_parts / g->total : 0;
	g->n_tensors++;
	if (g->w != NULL)
		ggufw_tensor(g->w[part], name, t, nd, ne);
}

#define T(suffix, kind, nd, a, b, c) \
	(snprintf(n, sizeof n, "blk.%u." suffix, i), add(g, n, kind, l, nd, a, b, c))

/* lfm2's attention layers (the rest are short convolutions). */
static int shapes_lfm2_attn(uint32_t il)
{
	return il % 3 == 2;
}

/* mamba2's SSM sizes from the shape (see SHAPE_LAYOUT_MAMBA2). */
#define MAMBA2_CONV 4
static void mamba2_layer(struct gen *g, const struct shape *s, uint32_t i)
{
	char n[GGUF_MAX_NAME];
	int l = (int)i;
	int64_t d_inner = 2 * (int64_t)s->n_embd, d_state = s->head_dim, heads = s->n_head;
	int64_t conv_dim = d_inner + 2 * d_state, d_in_proj = d_inner + conv_dim + heads;
	T("attn_norm.weight", "norm", 1, s->n_embd, 1, 1);
	T("ssm_in.weight", "attn_q", 2, s->n_embd, d_in_proj, 1);
	T("ssm_conv1d.weight", "f32", 2, MAMBA2_CONV, conv_dim, 1);
	T("ssm_conv1d.bias", "bias", 1, conv_dim, 1, 1);
	T("ssm_dt.bias", "bias", 1, heads, 1, 1);
	T("ssm_a", "f32", 2, 1, heads, 1);
	T("ssm_d", "f32", 2, 1, heads, 1);
	T("ssm_norm.weight", "f32", 2, d_inner, 1, 1);
	T("ssm_out.weight", "attn_output", 2, d_inner, s->n_embd, 1);
}

/* deepseek2's attention with the latent (see SHAPE_LAYOUT_DEEPSEEK2) and its FFN. */
static void deepseek2_layer(struct gen *g, const struct shape *s, uint32_t i)
{
	char n[GGUF_MAX_NAME];
	int l = (int)i;
	int64_t nope = s->head_dim, rope = s->head_dim / 2, kv_lora = 2 * (int64_t)s->head_dim;
	int64_t q_lora = 3 * (int64_t)s->head_dim, h = s->n_head;
	T("attn_norm.weight", "norm", 1, s->n_embd, 1, 1);
	T("attn_q_a_norm.weight", "norm", 1, q_lora, 1, 1);
	T("attn_kv_a_norm.weight", "norm", 1, kv_lora, 1, 1);
	T("attn_q_a.weight", "attn_q", 2, s->n_embd, q_lora, 1);
	T("attn_q_b.weight", "attn_q", 2, q_lora, h * (nope + rope), 1);
	T("attn_kv_a_mqa.weight", "attn_k", 2, s->n_embd, kv_lora + rope, 1);
	T("attn_k_b.weight", "attn_k", 3, nope, kv_lora, h);
	T("attn_v_b.weight", "attn_v", 3, kv_lora, s->head_dim, h);
	T("attn_output.weight", "attn_output", 2, h * s->head_dim, s->n_embd, 1);
	T("ffn_norm.weight", "norm", 1, s->n_embd, 1, 1);
	if (i == 0) {
		T("ffn_gate.weight", "ffn_gate", 2, s->n_embd, s->n_ff, 1);
		T("ffn_down.weight", "ffn_down", 2, s->n_ff, s->n_embd, 1);
		T("ffn_up.weight", "ffn_up", 2, s->n_embd, s->n_ff, 1);
		return;
	}
	T("ffn_gate_inp.weight", "ffn_gate_inp", 2, s->n_embd, s->n_expert, 1);
	T("ffn_gate_exps.weight", "ffn_gate_exps", 3, s->n_embd, s->n_ff_exp, s->n_expert);
	T("ffn_down_exps.weight", "ffn_down_exps", 3, s->n_ff_exp, s->n_embd, s->n_expert);
	T("ffn_up_exps.weight", "ffn_up_exps", 3, s->n_embd, s->n_ff_exp, s->n_expert);
	T("ffn_gate_shexp.weight", "ffn_gate", 2, s->n_embd, s->n_ff_exp, 1);
	T("ffn_down_shexp.weight", "ffn_down", 2, s->n_ff_exp, s->n_embd, 1);
	T("ffn_up_shexp.weight", "ffn_up", 2, s->n_embd, s->n_ff_exp, 1);
}

static void tensors(struct gen *g, const struct shape *s, uint32_t n_vocab)
{
	char n[GGUF_MAX_NAME];
	int64_t q = (int64_t)s->n_head * s->head_dim, kv = (int64_t)s->n_head_kv * s->head_dim;
	add(g, "token_embd.weight", "token_embd", 0, 2, s->n_embd, n_vocab, 1);
	for (uint32_t i = 0; i < s->n_layer; i++) {
		int l = (int)i;
		if (s->layout == SHAPE_LAYOUT_MAMBA2) {
			mamba2_layer(g, s, i);
			continue;
		}
		if (s->layout == SHAPE_LAYOUT_DEEPSEEK2) {
			deepseek2_layer(g, s, i);
			continue;
		}
		if (s->layout == SHAPE_LAYOUT_LFM2 && !shapes_lfm2_attn(i)) {
			T("attn_norm.weight", "norm", 1, s->n_embd, 1, 1);
			T("shortconv.conv.weight", "f32", 2, 3, s->n_embd, 1);
			T("shortconv.in_proj.weight", "attn_q", 2, s->n_embd, 3 * s->n_embd, 1);
			T("shortconv.out_proj.weight", "attn_output", 2, s->n_embd, s->n_embd, 1);
			T("ffn_norm.weight", "norm", 1, s->n_embd, 1, 1);
			T("ffn_gate.weight", "ffn_gate", 2, s->n_embd, s->n_ff, 1);
			T("ffn_down.weight", "ffn_down", 2, s->n_ff, s->n_embd, 1);
			T("ffn_up.weight", "ffn_up", 2, s->n_embd, s->n_ff, 1);
			continue;
		}
		T("attn_norm.weight", "norm", 1, s->n_embd, 1, 1);
		T("attn_q.weight", "attn_q", 2, s->n_embd, q, 1);
		T("attn_k.weight", "attn_k", 2, s->n_embd, kv, 1);
		T("attn_v.weight", "attn_v", 2, s->n_embd, kv, 1);
		if (s->qkv_bias) {
			T("attn_q.bias", "bias", 1, q, 1, 1);
			T("attn_k.bias", "bias", 1, kv, 1, 1);
			T("attn_v.bias", "bias", 1, kv, 1, 1);
		}
		if (s->qk_norm) {
			T("attn_q_norm.weight", "norm", 1, s->head_dim, 1, 1);
			T("attn_k_norm.weight", "norm", 1, s->head_dim, 1, 1);
		}
		T("attn_output.weight", "attn_output", 2, q, s->n_embd, 1);
		if (s->layout == SHAPE_LAYOUT_GPTOSS) {
			T("attn_output.bias", "bias", 1, s->n_embd, 1, 1);
			T("attn_sinks.weight", "norm", 1, s->n_head, 1, 1);
			T("post_attention_norm.weight", "norm", 1, s->n_embd, 1, 1);
			T("ffn_gate_inp.bias", "bias", 1, s->n_expert, 1, 1);
			T("ffn_gate_exps.bias", "bias", 2, s->n_ff_exp, s->n_expert, 1);
			T("ffn_down_exps.bias", "bias", 2, s->n_embd, s->n_expert, 1);
			T("ffn_up_exps.bias", "bias", 2, s->n_ff_exp, s->n_expert, 1);
		} else {
			T("ffn_norm.weight", "norm", 1, s->n_embd, 1, 1);
		}
		if (s->layout == SHAPE_LAYOUT_GEMMA3) {
			T("post_attention_norm.weight", "norm", 1, s->n_embd, 1, 1);
			T("post_ffw_norm.weight", "norm", 1, s->n_embd, 1, 1);
		}
		if (s->n_expert > 0) {
			T("ffn_gate_inp.weight", "ffn_gate_inp", 2, s->n_embd, s->n_expert, 1);
			T("ffn_gate_exps.weight", "ffn_gate_exps", 3, s->n_embd, s->n_ff_exp,
			    s->n_expert);
			T("ffn_down_exps.weight", "ffn_down_exps", 3, s->n_ff_exp, s->n_embd,
			    s->n_expert);
			T("ffn_up_exps.weight", "ffn_up_exps", 3, s->n_embd, s->n_ff_exp,
			    s->n_expert);
		} else {
			T("ffn_gate.weight", "ffn_gate", 2, s->n_embd, s->n_ff, 1);
			T("ffn_down.weight", "ffn_down", 2, s->n_ff, s->n_embd, 1);
			T("ffn_up.weight", "ffn_up", 2, s->n_embd, s->n_ff, 1);
		}
#undef T
	}
	/* lfm2 names its output norm token_embd_norm */
	add(g, s->layout == SHAPE_LAYOUT_LFM2 ? "token_embd_norm.weight" : "output_norm.weight",
	    "norm", 0, 1, s->n_embd, 1, 1);
	if (!s->tied_output)
		add(g, "output.weight", "output", 0, 2, s->n_embd, n_vocab, 1);
}

static void metadata(struct ggufw *w, const struct shape *s, const struct mix *m,
    const struct gguf *vocab)
{
	char k[128];
	const char *a = s->arch;
#define K(suffix) (snprintf(k, sizeof k, "%s." suffix, a), k)
	ggufw_str(w, "general.architecture", a);
	ggufw_str(w, "general.name", s->name);
	ggufw_u32(w, "general.file_type", (uint32_t)m->ftype);
	ggufw_u32(w, "general.quantization_version", 2);
	ggufw_u32(w, K("block_count"), s->n_layer);
	ggufw_u32(w, K("context_length"), s->n_ctx_train);
	ggufw_u32(w, K("embedding_length"), s->n_embd);
	ggufw_u32(w, K("feed_forward_length"), s->n_ff ? s->n_ff : s->n_ff_exp);
	if (s->layout == SHAPE_LAYOUT_MAMBA2) {
		ggufw_u32(w, K("ssm.conv_kernel"), MAMBA2_CONV);
		ggufw_u32(w, K("ssm.inner_size"), 2 * s->n_embd);
		ggufw_u32(w, K("ssm.state_size"), s->head_dim);
		ggufw_u32(w, K("ssm.time_step_rank"), s->n_head);
		ggufw_u32(w, K("ssm.group_count"), 1);
	}
	ggufw_u32(w, K("attention.head_count"), s->layout == SHAPE_LAYOUT_MAMBA2 ? 0 : s->n_head);
	if (s->layout == SHAPE_LAYOUT_LFM2) {
		int32_t kv[ARCH_LAYERS_MAX_SHAPE];
		for (uint32_t i = 0; i < s->n_layer && i < ARCH_LAYERS_MAX_SHAPE; i++)
			kv[i] = shapes_lfm2_attn(i) ? (int32_t)s->n_head_kv : 0;
		ggufw_arr_i32(w, K("attention.head_count_kv"), kv, s->n_layer);
		ggufw_u32(w, K("shortconv.l_cache"), 3);
	} else {
		ggufw_u32(w, K("attention.head_count_kv"), s->layout == SHAPE_LAYOUT_MAMBA2 ? 0 :
		    s->n_head_kv);
	}
	if (s->layout == SHAPE_LAYOUT_DEEPSEEK2) {
		/* the file stores the latent: K = kv_lora_rank + rope dims, V = kv_lora_rank */
		ggufw_u32(w, K("attention.key_length"), 2 * s->head_dim + s->head_dim / 2);
		ggufw_u32(w, K("attention.value_length"), 2 * s->head_dim);
		ggufw_u32(w, K("attention.key_length_mla"), s->head_dim + s->head_dim / 2);
		ggufw_u32(w, K("attention.value_length_mla"), s->head_dim);
		ggufw_u32(w, K("attention.q_lora_rank"), 3 * s->head_dim);
		ggufw_u32(w, K("attention.kv_lora_rank"), 2 * s->head_dim);
		ggufw_u32(w, K("rope.dimension_count"), s->head_dim / 2);
		ggufw_u32(w, K("leading_dense_block_count"), 1);
		ggufw_u32(w, K("expert_shared_count"), 1);
		ggufw_f32(w, K("expert_weights_scale"), 1.0f);
	} else {
		ggufw_u32(w, K("attention.key_length"), s->head_dim);
		ggufw_u32(w, K("attention.value_length"), s->head_dim);
		ggufw_u32(w, K("rope.dimension_count"), s->head_dim);
	}
	ggufw_f32(w, K("rope.freq_base"), 500000.0f);
	ggufw_f32(w, K("attention.layer_norm_rms_epsilon"), 1e-5f);
	if (s->n_expert > 0) {
		ggufw_u32(w, K("expert_count"), s->n_expert);
		ggufw_u32(w, K("expert_used_count"), s->n_expert_used);
		ggufw_u32(w, K("expert_feed_forward_length"), s->n_ff_exp);
	}
	if (s->pooling != 0)
		ggufw_u32(w, K("pooling_type"), s->pooling);
	/* a reranker reads the first token's state (pooling rank): it must see the whole
	 * query and document, as BERT-like rerankers do */
	if (s->pooling == 4)
		ggufw_bool(w, K("attention.causal"), 0);
	if (s->n_swa != 0)
		ggufw_u32(w, K("attention.sliding_window"), s->n_swa);
#undef K
	for (uint64_t i = 0; i < vocab->n_kv; i++) {
		const struct gguf_kv *kv = &vocab->kv[i];
		if (kv->key.len > 10 && memcmp(kv->key.p, "tokenizer.", 10) == 0)
			ggufw_copy(w, kv);
	}
}

static void split_keys(struct ggufw *w, int no, int count, int total)
{
	if (count <= 1)
		return;
	uint16_t v;
	struct gguf_kv kv = { .type = GGUF_T_UINT16, .val = (const uint8_t *)&v, .val_len = 2 };
	kv.key = (struct gguf_str){ "split.no", 8 };
	v = (uint16_t)no;
	ggufw_copy(w, &kv);
	kv.key = (struct gguf_str){ "split.count", 11 };
	v = (uint16_t)count;
	ggufw_copy(w, &kv);
	ggufw_i32(w, "split.tensors.count", total);
}

int shapes_write(const struct shape *s, const struct shapes_opts *o, const char *path,
    char *err, size_t errlen)
{
	struct mix m;
	const char *q = o->quant ? o->quant : s->quant;
	if (parse_quant(q, &m) < 0) {
		snprintf(err, errlen, "unknown quantization '%s' (F32, F16, Q8_0, Q4_K_M, MXFP4_MOE)",
		    q);
		return -1;
	}
	int parts = o->split > 1 ? o->split : 1;
	size_t plen = strlen(path);
	const char *suffix = "-00001-of-00002.gguf";
	if (parts > 1 && (parts > 99 || plen < strlen(suffix) ||
	    strncmp(path + plen - strlen(suffix), "-00001-of-", 10) != 0)) {
		snprintf(err, errlen, "a split model's path must end in -00001-of-%05d.gguf", parts);
		return -1;
	}
	struct gguf *vocab = gguf_open(o->vocab_path, err, errlen);
	if (vocab == NULL)
		return -1;
	uint32_t n_vocab = 0;
	int64_t ti = gguf_find(vocab, "tokenizer.ggml.tokens");
	if (ti >= 0 && vocab->kv[ti].type == GGUF_T_ARRAY)
		n_vocab = (uint32_t)vocab->kv[ti].arr_n;
	if (n_vocab == 0) {
		snprintf(err, errlen, "%s holds no tokenizer.ggml.tokens", o->vocab_path);
		gguf_close(vocab);
		return -1;
	}
	struct gen g = { NULL, parts, 0, 0, &m, (int)s->n_layer };
	tensors(&g, s, n_vocab); /* count only */
	g.total = g.n_tensors;
	g.n_tensors = 0;
	g.w = xcalloc((size_t)parts, sizeof *g.w);
	for (int p = 0; p < parts; p++) {
		g.w[p] = ggufw_new();
		if (p == 0)
			metadata(g.w[p], s, &m, vocab);
		split_keys(g.w[p], p, parts, g.total);
	}
	tensors(&g, s, n_vocab);
	gguf_close(vocab);
	int fill = o->fill >= 0 ? o->fill : s->random;
	int rc = 0;
	for (int p = 0; p < parts && rc == 0; p++) {
		char pp[4096];
		snprintf(pp, sizeof pp, "%.*s-%05d-of-%05d.gguf",
		    (int)(plen - (parts > 1 ? strlen(suffix) : 0)), path, p + 1, parts);
		rc = ggufw_write(g.w[p], parts > 1 ? pp : path, fill ? GGUFW_RANDOM : GGUFW_HOLE,
		    o->seed + (uint64_t)p, err, errlen);
	}
	for (int p = 0; p < parts; p++)
		ggufw_free(g.w[p]);
	free(g.w);
	return rc;
}

char *shapes_vocab_path(const char *name)
{
	const char *dir = getenv("MLOFFLOAD_LLAMA_DIR");
	if (dir != NULL && *dir != '\0')
		return xasprintf("%s/models/ggml-vocab-%s.gguf", dir, name);
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	const char *cache = getenv("MLOFFLOAD_CACHE");
	if (cache != NULL && *cache != '\0')
		return xasprintf("%s/llama-" LLAMA_PIN "/llama.cpp/models/ggml-vocab-%s.gguf",
		    cache, name);
	if (xdg != NULL && *xdg != '\0')
		return xasprintf("%s/mloffload/llama-" LLAMA_PIN
		    "/llama.cpp/models/ggml-vocab-%s.gguf", xdg, name);
	return xasprintf("%s/.cache/mloffload/llama-" LLAMA_PIN
	    "/llama.cpp/models/ggml-vocab-%s.gguf", home ? home : "", name);
}
