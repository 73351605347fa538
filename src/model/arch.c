/*
 * arch: hyperparameters from GGUF metadata. Keys and defaults follow llama.cpp's
 * llama-model.cpp of the pinned release (see docs/estimator.md).
 */
#include "arch.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *ftypes[] = {
	[0] = "F32", [1] = "F16", [2] = "Q4_0", [3] = "Q4_1", [7] = "Q8_0", [8] = "Q5_0",
	[9] = "Q5_1", [10] = "Q2_K", [11] = "Q3_K_S", [12] = "Q3_K_M", [13] = "Q3_K_L",
	[14] = "Q4_K_S", [15] = "Q4_K_M", [16] = "Q5_K_S", [17] = "Q5_K_M", [18] = "Q6_K",
	[19] = "IQ2_XXS", [20] = "IQ2_XS", [21] = "Q2_K_S", [22] = "IQ3_XS", [23] = "IQ3_XXS",
	[24] = "IQ1_S", [25] = "IQ4_NL", [26] = "IQ3_S", [27] = "IQ3_M", [28] = "IQ2_S",
	[29] = "IQ2_M", [30] = "IQ4_XS", [31] = "IQ1_M", [32] = "BF16", [36] = "TQ1_0",
	[37] = "TQ2_0", [38] = "MXFP4_MOE", [39] = "NVFP4", [40] = "Q1_0", [41] = "Q2_0",
};

const char *arch_ftype_name(int64_t ftype)
{
	if (ftype < 0 || ftype >= (int64_t)(sizeof ftypes / sizeof ftypes[0]))
		return NULL;
	return ftypes[ftype];
}

/* Indexed by llama_pooling_type; the names are llama-server's --pooling values. */
static const char *const poolings[] = { NULL, "mean", "cls", "last", "rank" };

const char *arch_pooling_name(uint32_t pooling)
{
	return pooling < sizeof poolings / sizeof poolings[0] ? poolings[pooling] : NULL;
}

/* Architectures whose graphs the compute rules follow and that docs/accuracy.md checks
 * against real llama-server (qwen3 is qwen3moe's graph with llama's dense FFN). */
static const char *const checked[] = { "llama", "qwen2", "qwen3", "qwen3moe", "gpt-oss",
	"gemma3", "mamba2", "lfm2", "deepseek2" };

int arch_checked(const char *arch)
{
	for (size_t i = 0; i < sizeof checked / sizeof checked[0]; i++)
		if (strcmp(arch, checked[i]) == 0)
			return 1;
	return 0;
}

int arch_tensor_layer(const char *name)
{
	if (strncmp(name, "blk.", 4) != 0)
		return -1;
	long long v = 0;
	const char *p = name + 4;
	if (*p < '0' || *p > '9')
		return -1;
	while (*p >= '0' && *p <= '9' && v < ARCH_MAX_LAYERS)
		v = v * 10 + (*p++ - '0');
	return *p == '.' && v < ARCH_MAX_LAYERS ? (int)v : -1;
}

/* llama.cpp's default sliding-window period per architecture (load_swa_pattern). */
static const struct { const char *arch; uint32_t period; int dense_first; } swa_defaults[] = {
	{ "gemma2", 2, 0 }, { "gemma3", 6, 0 }, { "gemma3n", 5, 0 }, { "gemma-embedding", 6, 0 },
	{ "cohere2", 4, 0 }, { "gpt-oss", 2, 0 }, { "llama4", 4, 0 }, { "exaone4", 4, 0 },
	{ "olmo2", 4, 0 }, { "afmoe", 4, 0 }, { "smallthinker", 4, 1 }, { "plamo3", 8, 0 },
	{ "mellum", 4, 0 }, { "phi3", 1, 0 },
};

static int key(const struct arch_info *a, const char *suffix, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s.%s", a->arch, suffix);
	return n > 0 && (size_t)n < len ? 0 : -1;
}

/* Reads arch.suffix as a scalar or a per-layer array into out[n_layer]; def if absent. */
static int per_layer(const struct gguf *g, const struct arch_info *a, const char *suffix,
    uint32_t def, uint32_t *out, char *err, size_t errlen)
{
	char k[160];
	int64_t v;
	key(a, suffix, k, sizeof k);
	int64_t i = gguf_find(g, k);
	for (uint32_t l = 0; l < a->n_layer; l++)
		out[l] = def;
	if (i < 0)
		return 0;
	const struct gguf_kv *kv = &g->kv[i];
	if (kv->type == GGUF_T_ARRAY) {
		if (kv->arr_n < a->n_layer)
			goto bad;
		for (uint32_t l = 0; l < a->n_layer; l++) {
			if (gguf_arr_int(kv, l, &v) < 0 || v < 0 || v > (1 << 24))
				goto bad;
			out[l] = (uint32_t)v;
		}
		return 0;
	}
	if (gguf_get_int(g, k, &v) < 0 || v < 0 || v > (1 << 24))
		goto bad;
	for (uint32_t l = 0; l < a->n_layer; l++)
		out[l] = (uint32_t)v;
	return 0;
bad:
	snprintf(err, errlen, "metadata %s is not a valid per-layer count", k);
	return -1;
}

static void read_swa(const struct gguf *g, struct arch_info *a)
{
	char k[160];
	int64_t v;
	key(a, "attention.sliding_window", k, sizeof k);
	if (gguf_get_int(g, k, &v) == 0 && v > 0 && v < (1LL << 31))
		a->n_swa = (uint32_t)v;
	if (a->n_swa == 0)
		return;
	key(a, "attention.sliding_window_pattern", k, sizeof k);
	int64_t i = gguf_find(g, k);
	if (i >= 0 && g->kv[i].type == GGUF_T_ARRAY && g->kv[i].arr_n >= a->n_layer) {
		for (uint32_t l = 0; l < a->n_layer; l++)
			a->is_swa[l] = gguf_arr_int(&g->kv[i], l, &v) == 0 && v != 0;
		return;
	}
	uint32_t period = 0;
	int dense_first = 0, known = 0;
	for (size_t j = 0; j < sizeof swa_defaults / sizeof swa_defaults[0]; j++) {
		if (strcmp(a->arch, swa_defaults[j].arch) == 0) {
			period = swa_defaults[j].period;
			dense_first = swa_defaults[j].dense_first;
			known = 1;
		}
	}
	if (i >= 0 && gguf_get_int(g, k, &v) == 0 && v >= 0 && v < 1 << 16) {
		period = (uint32_t)v;
		known = 1;
	}
	if (!known) {
		a->n_swa = 0; /* a window the architecture does not use */
		return;
	}
	for (uint32_t l = 0; l < a->n_layer; l++) {
		if (dense_first)
			a->is_swa[l] = period == 0 || l % period != 0;
		else
			a->is_swa[l] = period == 0 || l % period < period - 1;
	}
}

/* llama.cpp's llm_arch_is_recurrent: every layer keeps a recurrent state. */
static const char *const recurrent_archs[] = { "mamba", "mamba2", "rwkv6", "rwkv6qwen2",
	"rwkv7", "arwkv7" };

/*
 * Recurrent state (llama-memory-recurrent.cpp, llama_hparams::n_embd_r/n_embd_s): a
 * pure recurrent architecture keeps it on every layer, a hybrid (any model with ssm.* or
 * shortconv.* keys) on the layers without KV heads. Sizes as llama-hparams.cpp: LFM2's
 * short convolution keeps n_embd x (l_cache - 1); Mamba keeps (d_conv - 1) x (d_inner +
 * 2 x groups x d_state) of convolution and d_state x d_inner of SSM state. RWKV's and
 * the linear-attention variants' states are not modelled (their layers plan as generic).
 */
static void read_recurrent(const struct gguf *g, struct arch_info *a)
{
	char k[160];
	int64_t conv = 0, inner = 0, state = 0, groups = 0, lcache = 0, rank = 0;
	key(a, "ssm.time_step_rank", k, sizeof k);
	gguf_get_int(g, k, &rank);
	key(a, "ssm.conv_kernel", k, sizeof k);
	gguf_get_int(g, k, &conv);
	key(a, "ssm.inner_size", k, sizeof k);
	gguf_get_int(g, k, &inner);
	key(a, "ssm.state_size", k, sizeof k);
	gguf_get_int(g, k, &state);
	key(a, "ssm.group_count", k, sizeof k);
	gguf_get_int(g, k, &groups);
	key(a, "shortconv.l_cache", k, sizeof k);
	gguf_get_int(g, k, &lcache);
	if (conv < 0 || conv > 1 << 16 || inner < 0 || inner > 1 << 24 || state < 0 ||
	    state > 1 << 16 || groups < 0 || groups > 1 << 16 || lcache < 0 || lcache > 1 << 16 ||
	    rank < 0 || rank > 1 << 24)
		return;
	a->ssm_d_conv = (uint32_t)conv;
	a->ssm_d_inner = (uint32_t)inner;
	a->ssm_d_state = (uint32_t)state;
	a->ssm_n_group = (uint32_t)groups;
	a->ssm_dt_rank = (uint32_t)rank;
	a->shortconv_l_cache = (uint32_t)lcache;
	int recurrent = 0;
	for (size_t i = 0; i < sizeof recurrent_archs / sizeof recurrent_archs[0]; i++)
		recurrent |= strcmp(a->arch, recurrent_archs[i]) == 0;
	if (lcache > 0) {
		a->n_embd_r = (uint64_t)a->n_embd * (uint64_t)(lcache - 1);
	} else if (inner > 0) {
		a->n_embd_r = (uint64_t)(conv > 0 ? conv - 1 : 0) *
		    (uint64_t)(inner + 2 * groups * state);
		a->n_embd_s = (uint64_t)state * (uint64_t)inner;
	} else if (!recurrent) {
		return;
	}
	for (uint32_t l = 0; l < a->n_layer; l++) {
		a->is_recr[l] = recurrent || !a->has_kv[l];
		if (a->is_recr[l] && recurrent)
			a->has_kv[l] = 0;
	}
}

/* arch.name = v when the key is a count in 1..max-1 */
static void count_key(const struct gguf *g, const struct arch_info *a, const char *suffix,
    int64_t max, uint32_t *out)
{
	char k[160];
	int64_t v;
	key(a, suffix, k, sizeof k);
	if (gguf_get_int(g, k, &v) == 0 && v > 0 && v < max)
		*out = (uint32_t)v;
}

/* Mixture-of-experts keys: routed, used and shared experts, the expert width and the
 * leading dense layers (deepseek2). */
static void read_experts(const struct gguf *g, struct arch_info *a)
{
	count_key(g, a, "expert_count", 1 << 16, &a->n_expert);
	count_key(g, a, "expert_used_count", 1 << 16, &a->n_expert_used);
	count_key(g, a, "expert_shared_count", 1 << 16, &a->n_expert_shared);
	count_key(g, a, "leading_dense_block_count", ARCH_MAX_LAYERS, &a->n_dense_lead);
	count_key(g, a, "expert_feed_forward_length", 1 << 24, &a->n_ff_exp);
}

/* Multi-head latent attention (deepseek2 and kin) stored as the latent: with
 * key_length_mla in the file, this release's KV cache keeps K alone (the compressed
 * kv_lora_rank + rope dims, one "head"), V being a view of it (llama-kv-cache.cpp:
 * has_v = !is_mla). */
static void read_mla(const struct gguf *g, struct arch_info *a)
{
	char k[160];
	key(a, "attention.key_length_mla", k, sizeof k);
	if (gguf_find(g, k) < 0)
		return;
	a->mla = 1;
	for (uint32_t l = 0; l < a->n_layer; l++)
		a->n_embd_v_gqa[l] = 0;
}

static void dominant_type(const struct gguf *g, struct arch_info *a)
{
	uint64_t bytes[64] = { 0 };
	for (uint64_t i = 0; i < g->n_tensors; i++)
		if (g->tensors[i].type < 64 && g->tensors[i].n_dims >= 2)
			bytes[g->tensors[i].type] += g->tensors[i].size;
	uint32_t best = 0;
	for (uint32_t t = 1; t < 64; t++)
		if (bytes[t] > bytes[best])
			best = t;
	const char *n = gguf_ggml_type_name(best);
	snprintf(a->quant, sizeof a->quant, "%s", n ? n : "unknown");
}

int arch_read(const struct gguf *g, struct arch_info *a, char *err, size_t errlen)
{
	memset(a, 0, sizeof *a);
	char k[160];
	int64_t v;
	if (gguf_get_str(g, "general.architecture", a->arch, sizeof a->arch) < 0) {
		snprintf(err, errlen, "metadata general.architecture is missing");
		return -1;
	}
	gguf_get_str(g, "general.name", a->name, sizeof a->name);
	gguf_get_str(g, "general.size_label", a->size_label, sizeof a->size_label);
	key(a, "block_count", k, sizeof k);
	if (gguf_get_int(g, k, &v) < 0 || v < 1 || v > ARCH_MAX_LAYERS) {
		snprintf(err, errlen, "metadata %s is missing or not in 1..%d", k, ARCH_MAX_LAYERS);
		return -1;
	}
	a->n_layer = (uint32_t)v;
	key(a, "embedding_length", k, sizeof k);
	if (gguf_get_int(g, k, &v) < 0 || v < 1 || v > (1 << 20)) {
		snprintf(err, errlen, "metadata %s is missing or out of range", k);
		return -1;
	}
	a->n_embd = (uint32_t)v;
	key(a, "context_length", k, sizeof k);
	if (gguf_get_int(g, k, &v) == 0 && v > 0)
		a->n_ctx_train = (uint64_t)v;
	read_experts(g, a);
	/* llama.cpp reads this key for every architecture. A value with no --pooling name
	 * (none, or one this release does not know) leaves the model generative here. */
	key(a, "pooling_type", k, sizeof k);
	if (gguf_get_int(g, k, &v) == 0 && v > 0 && v <= UINT32_MAX &&
	    arch_pooling_name((uint32_t)v) != NULL)
		a->pooling = (uint32_t)v;
	key(a, "vocab_size", k, sizeof k);
	int64_t ti = gguf_find(g, "tokenizer.ggml.tokens");
	if (gguf_get_int(g, k, &v) == 0 && v > 0 && v < (1LL << 31))
		a->n_vocab = (uint32_t)v;
	else if (ti >= 0 && g->kv[ti].type == GGUF_T_ARRAY && g->kv[ti].arr_n < (1ULL << 31))
		a->n_vocab = (uint32_t)g->kv[ti].arr_n;

	uint32_t n = a->n_layer;
	a->n_head = xcalloc(n, sizeof *a->n_head);
	a->n_head_kv = xcalloc(n, sizeof *a->n_head_kv);
	a->n_ff = xcalloc(n, sizeof *a->n_ff);
	a->n_embd_k_gqa = xcalloc(n, sizeof *a->n_embd_k_gqa);
	a->n_embd_v_gqa = xcalloc(n, sizeof *a->n_embd_v_gqa);
	a->is_swa = xcalloc(n, 1);
	a->has_kv = xcalloc(n, 1);
	a->is_recr = xcalloc(n, 1);
	if (per_layer(g, a, "attention.head_count", 0, a->n_head, err, errlen) < 0 ||
	    per_layer(g, a, "feed_forward_length", 0, a->n_ff, err, errlen) < 0)
		goto fail;
	if (per_layer(g, a, "attention.head_count_kv", a->n_head[0], a->n_head_kv, err,
	    errlen) < 0)
		goto fail;
	int64_t kl = 0, vl = 0;
	key(a, "attention.key_length", k, sizeof k);
	gguf_get_int(g, k, &kl);
	key(a, "attention.value_length", k, sizeof k);
	gguf_get_int(g, k, &vl);
	for (uint32_t l = 0; l < n; l++) {
		uint64_t hk = kl > 0 && kl < (1 << 20) ? (uint64_t)kl :
		    (a->n_head[l] ? a->n_embd / a->n_head[l] : 0);
		uint64_t hv = vl > 0 && vl < (1 << 20) ? (uint64_t)vl : hk;
		if (a->n_head_kv[l] > (1 << 16)) {
			snprintf(err, errlen, "layer %u has %u KV heads", l, a->n_head_kv[l]);
			goto fail;
		}
		a->n_embd_k_gqa[l] = (uint32_t)(hk * a->n_head_kv[l]);
		a->n_embd_v_gqa[l] = (uint32_t)(hv * a->n_head_kv[l]);
		a->has_kv[l] = a->n_head_kv[l] > 0 && a->n_embd_k_gqa[l] > 0;
	}
	read_mla(g, a);
	read_swa(g, a);
	read_recurrent(g, a);

	for (uint64_t i = 0; i < g->n_tensors; i++) {
		const struct gguf_tensor *t = &g->tensors[i];
		a->n_params += (uint64_t)(t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3]);
		a->model_bytes += t->size;
	}
	const char *ft = NULL;
	if (gguf_get_int(g, "general.file_type", &v) == 0)
		ft = arch_ftype_name(v);
	if (ft != NULL)
		snprintf(a->quant, sizeof a->quant, "%s", ft);
	else
		dominant_type(g, a);
	return 0;
fail:
	arch_free(a);
	return -1;
}

void arch_free(struct arch_info *a)
{
	free(a->n_head);
	free(a->n_head_kv);
	free(a->n_ff);
	free(a->n_embd_k_gqa);
	free(a->n_embd_v_gqa);
	free(a->is_swa);
	free(a->has_kv);
	free(a->is_recr);
	a->is_recr = NULL;
	a->n_head = a->n_head_kv = a->n_ff = a->n_embd_k_gqa = a->n_embd_v_gqa = NULL;
	a->is_swa = a->has_kv = NULL;
}
