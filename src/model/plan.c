/*
 * plan: placement within a budget and the llama-server arguments for it.
 *
 * Compute buffers are modelled after llama.cpp's worst-case prompt graph (T tokens =
 * min(context, n_ubatch), all T producing logits): each backend's buffer is the peak
 * of live intermediate tensors of the layers it runs, the logits where the output
 * layer runs, and the copies of inputs that cross from one backend to another. The
 * constants were fitted against the pinned release's own reports; docs/estimator.md
 * has the formula and the table of predicted against measured.
 */
#include "plan.h"
#include "util.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MiB (1024ull * 1024)

struct ctx {
	const struct est *e;
	const struct plan_opts *o;
	regex_t re[PLAN_MAX_PATTERNS];
	size_t n_re;
	int proj_cpu;             /* the plan moved the projector to the CPU */
};

/* Translates a glob on tensor names into an extended regex that llama.cpp's -ot
 * matches as a search: '*' any run, '?' one character, '.' literal, [..] kept. */
static int glob_to_regex(const char *glob, char *out, size_t len)
{
	size_t j = 0;
	for (const char *p = glob; *p; p++) {
		const char *rep = NULL;
		char one[2] = { *p, 0 };
		switch (*p) {
		case '*': rep = ".*"; break;
		case '?': rep = "."; break;
		case '.': case '+': case '(': case ')': case '{': case '}': case '|': case '^':
		case '$': case '\\': rep = NULL; break;
		default: rep = one; break;
		}
		char esc[3] = { '\\', *p, 0 };
		const char *s = rep ? rep : esc;
		size_t n = strlen(s);
		if (j + n + 1 > len)
			return -1;
		memcpy(out + j, s, n);
		j += n;
	}
	out[j] = '\0';
	return j > 0 ? 0 : -1;
}

static int forced_cpu(const struct ctx *c, const char *name)
{
	for (size_t i = 0; i < c->n_re; i++)
		if (regexec(&c->re[i], name, 0, NULL, 0) == 0)
			return 1;
	return 0;
}

/*
 * Compute buffers, fitted to the pinned release (docs/estimator.md). With T prompt
 * tokens per micro-batch, E = T x n_embd x 4 bytes and F = T x (FFN width) x 4 bytes,
 * where the FFN width of a MoE layer is experts used x expert width:
 *   mask     KQ mask, kv cells x T, F16 with flash attention, F32 without
 *   FFN      3F for a dense layer; max(3F, F + 2 x used x E) for a MoE layer, whose
 *            down projection yields one row of n_embd per token and expert used
 *   ATTN     7E x (query width / n_embd), with flash attention
 *   a device running layers: mask + max(FFN + 2E (+E when it runs them all), ATTN),
 *     where a MoE FFN counts only if the device runs experts of some layer;
 *     without flash attention at least kv x T x heads x 4 (the KQ scores) + mask + 4.5E
 *   the backend running the output head: at least the logits, vocab x slots x 4; for
 *     an embedding model, whose outputs are all T tokens, vocab x T x 4 + 2E, + the
 *     mask when that backend runs layers too (measured: the slots' few logits fit in
 *     space freed by the layers, the logits of T tokens land above it)
 *   the CPU: mask + 2E for the inputs, or mask + FFN + 4E when it runs layers,
 *     + max(2F, 2 x used x E) when it runs experts of device layers, + its host
 *     output buffer: (vocab, + n_embd for an embedding model) x slots x 4.
 */
struct shape_sizes {
	uint64_t T, E, F, ffn, dense_ffn, moe_out, attn, mask, kq;
	uint64_t logits, out_rows, out_mask, host_out;
	uint64_t swa_mask, swa_mask_in; /* the sliding layers' mask on a device, and its F32
	                                 * input on the CPU */
	uint64_t bias_extra;            /* gpt-oss's biased experts, fitted (see below) */
	uint64_t rec;                   /* a Mamba-2 layer's live tensors (see below) */
	uint64_t lead_ffn;              /* the FFN of a MoE model's leading dense layers */
	int fa;
};

static uint64_t max64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

static void sizes(const struct est *e, struct shape_sizes *s)
{
	const struct arch_info *a = &e->a;
	s->T = e->o.n_ubatch < e->n_ctx ? e->o.n_ubatch : e->n_ctx;
	s->E = s->T * a->n_embd * 4;
	uint64_t ff = 0;
	for (uint32_t l = 0; l < a->n_layer; l++)
		if (a->n_ff[l] > ff)
			ff = a->n_ff[l];
	if (a->n_expert > 0 && a->n_ff_exp > 0)
		ff = (uint64_t)a->n_expert_used * a->n_ff_exp;
	s->F = s->T * ff * 4;
	s->ffn = 3 * s->F;
	s->dense_ffn = a->n_expert > 0 ? 0 : s->ffn;
	s->moe_out = 0;
	uint64_t qdim = a->n_head[0] ? (uint64_t)a->n_head[0] * (a->n_embd_k_gqa[0] /
	    (a->n_head_kv[0] ? a->n_head_kv[0] : 1)) : a->n_embd;
	s->attn = 7 * s->T * qdim * 4;
	/* latent attention works on Q absorbed into the latent (kv_lora_rank + rope per
	 * head, deepseek2.cpp): three such tensors, not the seven of a full head */
	if (a->mla)
		s->attn = 3 * s->T * (uint64_t)a->n_head[0] * a->n_embd_k_gqa[0] * 4;
	s->lead_ffn = a->n_dense_lead > 0 ? 3 * s->T * (uint64_t)a->n_ff[0] * 4 : 0;
	if (a->n_expert > 0) {
		s->moe_out = 2 * (uint64_t)a->n_expert_used * s->E;
		s->ffn = max64(s->ffn, s->F + s->moe_out);
		/* shared experts (deepseek2) run after the routed ones: their gate, up and
		 * GLU output (3 x T x shared width) on top */
		s->ffn += 3 * s->T * (uint64_t)a->n_expert_shared * a->n_ff_exp * 4;
	}
	s->fa = e->o.flash_attn != 0;
	uint64_t kv = e->kv_cells;
	int attn = 0; /* a model without attention layers (Mamba) builds no mask */
	for (uint32_t l = 0; l < a->n_layer; l++)
		attn |= a->has_kv[l];
	if (!attn)
		kv = 0;
	s->mask = kv * s->T * (s->fa ? 2 : 4);
	s->kq = s->fa ? 0 : kv * s->T * a->n_head[0] * 4;
	/* build_attn_inp_kv_iswa: a second mask over the sliding layers' cells, an F32
	 * input on the CPU and, with flash attention, an F16 copy where the layers run */
	s->swa_mask = e->swa ? (uint64_t)e->kv_cells_swa * s->T * (s->fa ? 2 : 4) : 0;
	s->swa_mask_in = e->swa ? (uint64_t)e->kv_cells_swa * s->T * 4 : 0;
	/* experts with biases (gpt-oss, SWIGLU_OAI): a device running them held 3E more
	 * than the dense rule, 5.5E more when it runs every layer. Fitted on two
	 * gpt-oss-20b loads (8k context all layers, 32k with 4), see docs/estimator.md */
	s->bias_extra = e->moe_bias ? 3 * s->E : 0;
	/* a Mamba-2 layer (mamba-base.cpp build_mamba2_layer) keeps alive at its peak the
	 * input projection zxBCdt (T x d_in_proj), the convolution's input (T + d_conv - 1
	 * columns of conv_dim) and output (T x conv_dim), the scan's output (T x d_inner)
	 * and the states gathered for the sequences (n_seq x (n_embd_r + n_embd_s)), all
	 * F32. LFM2's short convolutions stay below its FFN and need no term. */
	s->rec = 0;
	if (a->ssm_d_inner > 0 && a->ssm_d_conv > 0) {
		uint64_t conv_dim = a->ssm_d_inner + 2ull * a->ssm_n_group * a->ssm_d_state;
		uint64_t in_proj = a->ssm_d_inner + conv_dim + a->ssm_dt_rank;
		uint64_t n_seq = e->o.n_seq ? e->o.n_seq : 1;
		s->rec = 4 * (s->T * (in_proj + 2 * conv_dim + a->ssm_d_inner) +
		    (a->ssm_d_conv - 1) * conv_dim + n_seq * (a->n_embd_r + a->n_embd_s));
	}
	/* llama-server reserves the graph for one output per slot; an embedding model
	 * outputs every token of the batch (n_outputs_max = n_batch, server-context.cpp),
	 * so its worst case holds the logits of all T tokens: vocab x 512 x 4 bytes */
	uint64_t slots = e->o.n_seq ? e->o.n_seq : 1;
	uint64_t outs = a->pooling ? e->o.n_batch : slots;
	if (outs > s->T)
		outs = s->T;
	s->logits = (uint64_t)a->n_vocab * outs * 4;
	s->out_rows = a->pooling ? 2 * outs * a->n_embd * 4 : 0;
	s->out_mask = a->pooling ? s->mask : 0;
	s->host_out = ((uint64_t)a->n_vocab + (a->pooling ? a->n_embd : 0)) * slots * 4;
}

/* Peak of the output head's phase on a backend that runs it (and layers, or not). */
static uint64_t output_phase(const struct shape_sizes *s, int layers)
{
	uint64_t b = s->logits + s->out_rows + (layers > 0 ? s->out_mask : 0);
	/* Mamba-2's graph selects the output rows after the head's input arrives: two
	 * rows of n_embd per token where the output layer runs (measured, small-mamba2) */
	return s->rec > 0 ? max64(b, 2 * s->E) : b;
}

static uint64_t dev_compute(const struct shape_sizes *s, int layers, int all, int experts,
    int output, int lead)
{
	uint64_t b = 0;
	if (layers > 0) {
		uint64_t ffn = max64(experts ? s->ffn : s->dense_ffn, lead ? s->lead_ffn : 0);
		uint64_t extra = experts ? s->bias_extra + (all ? s->bias_extra * 5 / 6 : 0) : 0;
		b = s->mask + max64(ffn + (2 + (all ? 1 : 0)) * s->E + extra, s->attn);
		if (!s->fa)
			b = max64(b, s->kq + s->mask + s->E * 9 / 2);
		b += s->swa_mask;
		if (s->rec > 0)
			b = max64(b, s->mask + s->rec + 2 * s->E);
	}
	return output ? max64(b, output_phase(s, layers)) : b;
}

uint64_t plan_dev_compute(const struct est *e, int layers, int all, int experts, int output,
    int lead)
{
	struct shape_sizes s;
	sizes(e, &s);
	uint64_t b = dev_compute(&s, layers, all, experts, output, lead);
	return e->generic ? b + b / EST_GENERIC_MARGIN : b;
}

uint64_t plan_pp_inputs(const struct est *e)
{
	struct shape_sizes s;
	sizes(e, &s);
	/* + E/2: what else a copy held on two-RPC-server splits (small-llama 0.36E,
	 * small-moe 0.4E to 0.7E per copy; positions, cache indices, alignment) */
	return s.mask + s.swa_mask + s.E + s.E / 2;
}

static uint64_t cpu_compute(const struct shape_sizes *s, int layers, int experts, int output)
{
	uint64_t b = s->mask + 2 * s->E;
	if (layers > 0) {
		b = s->mask + max64(s->ffn, s->lead_ffn) + 4 * s->E;
		if (!s->fa)
			b = max64(b, s->kq + s->mask + s->E * 11 / 2);
		if (s->rec > 0)
			b = max64(b, s->mask + s->rec + 3 * s->E);
	}
	if (output)
		b = max64(b, output_phase(s, layers));
	if (experts) /* the GLU keeps gate, up and its output: 3F */
		b += max64(3 * s->F, s->moe_out);
	return b + s->swa_mask_in + s->host_out;
}

void plan_usage_for(const struct est *e, const struct plan_opts *o, int has_dev, int ngl,
    int n_cpu_moe, struct plan_usage *dev, struct plan_usage *cpu)
{
	struct ctx c = { .e = e, .o = o };
	(void)c;
	memset(dev, 0, sizeof *dev);
	memset(cpu, 0, sizeof *cpu);
	int n = (int)e->a.n_layer;
	if (!has_dev)
		ngl = 0;
	int first_dev = n + 1 - ngl; /* layer il on the device when il >= first_dev */
	cpu->model += e->input_bytes;
	int dev_layers = 0, dev_experts = 0;
	for (int l = 0; l < n; l++) {
		const struct est_layer *L = &e->layer[l];
		if (l >= first_dev) {
			uint64_t moved = l < n_cpu_moe ? L->exps : 0;
			dev_experts |= L->exps > 0 && moved == 0;
			dev->model += L->weights - moved;
			cpu->model += moved;
			if (o->no_kv_offload)
				cpu->kv += L->kv;
			else
				dev->kv += L->kv;
			dev_layers++;
		} else {
			cpu->model += L->weights;
			cpu->kv += L->kv;
		}
	}
	int out_dev = n >= first_dev;
	if (out_dev)
		dev->model += e->output_bytes;
	else
		cpu->model += e->output_bytes;
	struct shape_sizes s;
	sizes(e, &s);
	dev->compute = dev_compute(&s, dev_layers, dev_layers == n, dev_experts, out_dev,
	    dev_layers > 0 && first_dev < (int)e->a.n_dense_lead);
	cpu->compute = cpu_compute(&s, n - dev_layers, dev_layers > 0 && n_cpu_moe > 0 &&
	    e->a.n_expert > 0, !out_dev);
	if (e->generic) { /* rules never checked on this graph: the stated margin */
		dev->compute += dev->compute / EST_GENERIC_MARGIN;
		cpu->compute += cpu->compute / EST_GENERIC_MARGIN;
	}
	dev->total = dev->model + dev->kv + dev->compute;
	cpu->total = cpu->model + cpu->kv + cpu->compute;
}

/* Whether llama.cpp's CPU backend repacks a weight of this type into its interleaved
 * layout on this machine (ggml-cpu/repack.cpp: x86 with AVX2, matrices whose row count
 * is a multiple of 8). The token embeddings are read by row, never repacked. */
static int repacked(const struct gguf_tensor *t)
{
#if defined(__x86_64__) || defined(__i386__)
	static int avx2 = -1;
	if (avx2 < 0)
		avx2 = __builtin_cpu_supports("avx2") ? 1 : 0;
	if (!avx2 || t->n_dims < 2 || t->ne[1] % 8 != 0 || strncmp(t->name, "token_embd", 10) == 0)
		return 0;
	return t->type == GGUF_GGML_Q4_0 || t->type == GGUF_GGML_Q4_K ||
	    t->type == GGUF_GGML_IQ4_NL || t->type == GGUF_GGML_MXFP4;
#else
	(void)t;
	return 0;
#endif
}

/* The projector stays on the CPU when a pattern names it (--no-mmproj-offload). */
static int mmproj_on_cpu(const struct ctx *c)
{
	return c->proj_cpu || (c->n_re > 0 && forced_cpu(c, "mmproj"));
}

/* 1 if tensor t sits on the device under placement (ngl, n_cpu_moe) and the patterns. */
static int on_device(const struct ctx *c, int ngl, int n_cpu_moe, const struct gguf_tensor *t)
{
	int n = (int)c->e->a.n_layer, first_dev = n + 1 - ngl;
	int l = arch_tensor_layer(t->name);
	int dev = l >= 0 ? l >= first_dev && !(l < n_cpu_moe && strstr(t->name, "_exps")) :
	    (est_output_tensor(c->e->a.arch, t->name) && n >= first_dev);
	return dev && !(c->n_re > 0 && forced_cpu(c, t->name));
}

/* Usage with the patterns applied (tensors forced to the CPU leave the device), the
 * CPU's repacked copies counted, and the file span llama.cpp maps for the CPU. */
static void usage(const struct ctx *c, int has_dev, int ngl, int n_cpu_moe,
    struct plan_usage *dev, struct plan_usage *cpu)
{
	const struct est *e = c->e;
	plan_usage_for(e, c->o, has_dev, ngl, n_cpu_moe, dev, cpu);
	if (!has_dev)
		ngl = 0;
	uint64_t lo[GGUF_MAX_PARTS], hi[GGUF_MAX_PARTS];
	for (uint32_t i = 0; i < e->g->n_parts && i < GGUF_MAX_PARTS; i++) {
		lo[i] = UINT64_MAX;
		hi[i] = 0;
	}
	int n = (int)e->a.n_layer, first_dev = n + 1 - ngl;
	for (uint64_t i = 0; i < e->g->n_tensors; i++) {
		const struct gguf_tensor *t = &e->g->tensors[i];
		int l = arch_tensor_layer(t->name);
		int by_layer = l >= 0 ? l >= first_dev && !(l < n_cpu_moe && strstr(t->name, "_exps")) :
		    (est_output_tensor(e->a.arch, t->name) && n >= first_dev);
		if (by_layer && !on_device(c, ngl, n_cpu_moe, t)) {
			uint64_t b = est_tensor_bytes(t);
			dev->model -= b;
			cpu->model += b;
		}
		if (on_device(c, ngl, n_cpu_moe, t))
			continue;
		if (!c->o->no_repack && repacked(t)) {
			cpu->repack += est_tensor_bytes(t);
		} else if (t->part < GGUF_MAX_PARTS) {
			if (t->offset < lo[t->part])
				lo[t->part] = t->offset;
			if (t->offset + t->size > hi[t->part])
				hi[t->part] = t->offset + t->size;
		}
	}
	for (uint32_t i = 0; i < e->g->n_parts && i < GGUF_MAX_PARTS; i++)
		if (hi[i] > lo[i])
			cpu->mapped += hi[i] - lo[i];
	if (e->o.mmproj_bytes > 0) {
		/* clip.cpp: weights and compute buffer on the device, the raw image on
		 * the CPU; or all of it on the CPU (--no-mmproj-offload) */
		if (ngl > 0 && !mmproj_on_cpu(c)) {
			dev->model += e->o.mmproj_bytes;
			dev->compute += e->o.mmproj_compute;
			cpu->compute += e->o.mmproj_input;
		} else {
			cpu->model += e->o.mmproj_bytes;
			cpu->compute += e->o.mmproj_compute;
		}
	}
	dev->total = dev->model + dev->kv + dev->compute;
	cpu->total = cpu->model + cpu->kv + cpu->compute + cpu->repack;
}

static void add_arg(struct plan *p, const char *s)
{
	p->args = xreallocarray(p->args, p->n_args + 2, sizeof *p->args);
	p->args[p->n_args++] = xstrdup(s);
	p->args[p->n_args] = NULL;
}

/* A cache type's argument; est_build accepts only types est_cache_type names. */
static const char *cache_name(uint32_t t)
{
	const char *n = est_cache_name(t);
	return n != NULL ? n : "f16";
}

static void build_args(const struct ctx *c, const struct plan_device *dev, struct plan *p)
{
	char buf[64];
	const struct est *e = c->e;
	add_arg(p, "-c");
	snprintf(buf, sizeof buf, "%u", e->n_ctx);
	add_arg(p, buf);
	add_arg(p, "-ngl");
	snprintf(buf, sizeof buf, "%d", p->ngl);
	add_arg(p, buf);
	if (p->n_cpu_moe > 0) {
		add_arg(p, "--n-cpu-moe");
		snprintf(buf, sizeof buf, "%d", p->n_cpu_moe);
		add_arg(p, buf);
	}
	for (size_t i = 0; i < c->o->n_cpu_patterns; i++) {
		char re[512], ot[600];
		glob_to_regex(c->o->cpu_patterns[i], re, sizeof re);
		snprintf(ot, sizeof ot, "%s=CPU", re);
		add_arg(p, "-ot");
		add_arg(p, ot);
	}
	if (c->o->no_kv_offload)
		add_arg(p, "-nkvo");
	if (c->o->no_repack)
		add_arg(p, "--no-repack");
	if (c->o->mmproj != NULL) {
		add_arg(p, "--mmproj");
		add_arg(p, c->o->mmproj);
		if (p->ngl == 0 || mmproj_on_cpu(c))
			add_arg(p, "--no-mmproj-offload");
	}
	if (e->o.type_k != GGUF_GGML_F16 || e->o.type_v != GGUF_GGML_F16) {
		add_arg(p, "-ctk");
		add_arg(p, cache_name(e->o.type_k));
		add_arg(p, "-ctv");
		add_arg(p, cache_name(e->o.type_v));
	}
	if (e->o.flash_attn >= 0) {
		add_arg(p, "-fa");
		add_arg(p, e->o.flash_attn ? "on" : "off");
	}
	if (e->a.pooling != 0) {
		/* an embedding model: llama-server serves /v1/embeddings only with
		 * --embeddings, and the pooling is said again so that it is explicit; a
		 * reranker (pooling rank) gets the same pair, which is what --reranking
		 * sets, and serves /v1/rerank */
		add_arg(p, "--embeddings");
		add_arg(p, "--pooling");
		add_arg(p, arch_pooling_name(e->a.pooling));
	}
	if (dev != NULL && dev->rpc[0] != '\0') {
		add_arg(p, "--rpc");
		add_arg(p, dev->rpc);
	}
	add_arg(p, "--fit");
	add_arg(p, "off");
}

int plan_make(const struct est *e, const struct plan_device *dev, const struct plan_opts *o,
    struct plan *p, char *err, size_t errlen)
{
	memset(p, 0, sizeof *p);
	struct ctx c = { .e = e, .o = o };
	for (size_t i = 0; i < o->n_cpu_patterns && i < PLAN_MAX_PATTERNS; i++) {
		char re[512];
		if (glob_to_regex(o->cpu_patterns[i], re, sizeof re) < 0 ||
		    regcomp(&c.re[c.n_re], re, REG_EXTENDED | REG_NOSUB) != 0) {
			snprintf(err, errlen, "invalid CPU pattern '%s'", o->cpu_patterns[i]);
			for (size_t j = 0; j < c.n_re; j++)
				regfree(&c.re[j]);
			return -1;
		}
		c.n_re++;
	}
	int n = (int)e->a.n_layer;
	int has_dev = dev != NULL && o->offload != PLAN_CPU;
	int moe = e->a.n_expert > 0;
	uint64_t budget = dev ? dev->budget : 0;
	snprintf(p->dev_name, sizeof p->dev_name, "%s", dev ? dev->name : "none");
	p->ngl = has_dev ? n + 1 : 0;
	p->n_cpu_moe = 0;
	usage(&c, has_dev, p->ngl, 0, &p->dev, &p->cpu);
	if (has_dev && o->ngl >= 0) {
		p->ngl = o->ngl > n + 1 ? n + 1 : o->ngl;
		p->n_cpu_moe = o->n_cpu_moe > n ? n : o->n_cpu_moe;
		usage(&c, 1, p->ngl, p->n_cpu_moe, &p->dev, &p->cpu);
	}
	p->fits = !has_dev || p->dev.total <= budget;
	if (!p->fits && o->offload == PLAN_AUTO && o->ngl < 0 && o->mmproj != NULL &&
	    e->o.mmproj_bytes > 0 && !mmproj_on_cpu(&c)) {
		/* the projector (vision or audio encoder) leaves before any layer does: it
		 * runs once per image, the layers for every token (--no-mmproj-offload) */
		c.proj_cpu = 1;
		usage(&c, 1, n + 1, 0, &p->dev, &p->cpu);
		p->fits = p->dev.total <= budget;
		if (p->fits) {
			char saved[32];
			snprintf(p->reason, sizeof p->reason, "projector on the CPU "
			    "(--no-mmproj-offload), saving %s on %s; every layer stays there",
			    util_fmt_size(plan_mmproj_saving(e), saved, sizeof saved), p->dev_name);
		}
	}
	if (!p->fits && o->offload == PLAN_AUTO && o->ngl < 0) {
		/* experts first, first layer first; then whole layers */
		for (int k = 1; moe && k <= n && !p->fits; k++) {
			usage(&c, 1, n + 1, k, &p->dev, &p->cpu);
			p->n_cpu_moe = k;
			p->fits = p->dev.total <= budget;
		}
		for (int ngl = n; ngl >= 0 && !p->fits; ngl--) {
			usage(&c, 1, ngl, p->n_cpu_moe, &p->dev, &p->cpu);
			p->ngl = ngl;
			p->fits = ngl == 0 || p->dev.total <= budget;
		}
		if (p->fits)
			snprintf(p->reason, sizeof p->reason, "offloaded: %d of %d layers on %s%s%s",
			    p->ngl, n + 1, p->dev_name, p->n_cpu_moe ?
			    ", experts of the first layers on the CPU" : "", c.proj_cpu ?
			    ", projector on the CPU" : "");
	} else if (!p->fits) {
		char need[32], have[32];
		snprintf(p->reason, sizeof p->reason, "needs %s on %s, the budget is %s",
		    util_fmt_size(p->dev.total, need, sizeof need), p->dev_name,
		    util_fmt_size(budget, have, sizeof have));
	}
	if (p->ngl == 0)
		memset(&p->dev, 0, sizeof p->dev);
	p->mmproj_cpu = o->mmproj != NULL && (p->ngl == 0 || mmproj_on_cpu(&c));
	build_args(&c, has_dev ? dev : NULL, p);
	for (size_t j = 0; j < c.n_re; j++)
		regfree(&c.re[j]);
	return 0;
}

uint64_t plan_mmproj_saving(const struct est *e)
{
	return e->o.mmproj_bytes + e->o.mmproj_compute;
}

int plan_check_pattern(const char *glob)
{
	char re[512];
	regex_t r;
	if (glob_to_regex(glob, re, sizeof re) < 0 || regcomp(&r, re, REG_EXTENDED | REG_NOSUB) != 0)
		return -1;
	regfree(&r);
	return 0;
}

void plan_free(struct plan *p)
{
	for (size_t i = 0; i < p->n_args; i++)
		free(p->args[i]);
	free(p->args);
	p->args = NULL;
	p->n_args = 0;
}
