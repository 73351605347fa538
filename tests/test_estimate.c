/*
 * test_estimate: the estimator and planner on generated models of real shapes, checked
 * against numbers a user can work out by hand from the model card (KV cache bytes,
 * weight bytes) and against the rules a plan must keep (it stays within its budget,
 * offloads experts before layers, realises itself in llama-server arguments).
 */
#include "testutil.h"
#include "accuracy_cases.h"
#include "model.h"

#include "estimate.h"
#include "gguf.h"
#include "plan.h"
#include "shapes.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MiB (1024ull * 1024)
#define GiB (1024ull * MiB)

static struct gguf *gen(const char *shape, const char *quant)
{
	char name[128], err[4096];
	snprintf(name, sizeof name, "%s-%s.gguf", shape, quant ? quant : "default");
	char *path = tu_path(name);
	char *vocab = shapes_vocab_path(shapes_find(shape)->vocab);
	struct shapes_opts o = { quant, vocab, 0, 1, 1 };
	struct gguf *g = NULL;
	if (shapes_write(shapes_find(shape), &o, path, err, sizeof err) == 0)
		g = gguf_open(path, err, sizeof err);
	if (g == NULL)
		fail_msg("%s", err);
	free(vocab);
	free(path);
	return g;
}

static int has_arg(const struct plan *p, const char *a, const char *v)
{
	for (size_t i = 0; i + 1 <= p->n_args; i++)
		if (strcmp(p->args[i], a) == 0 && (v == NULL ||
		    (i + 1 < p->n_args && strcmp(p->args[i + 1], v) == 0)))
			return 1;
	return 0;
}

static void llama8b_kv_and_weights(void **state)
{
	struct gguf *g = gen("llama3-8b", NULL);
	struct est_opts o;
	struct est e;
	char err[256];
	est_defaults(&o);
	o.n_ctx = 8192;
	assert_int_equal(est_build(g, &o, &e, err, sizeof err), 0);
	/* 32 layers x 8192 cells x (8 KV heads x 128) x (K + V) x 2 bytes = 1 GiB */
	assert_int_equal(e.kv_total, 1 * GiB);
	assert_int_equal(e.a.n_layer, 32);
	assert_string_equal(e.a.quant, "Q4_K_M");
	/* a Llama-3.1-8B Q4_K_M file holds 4.58 GiB of tensors */
	assert_true(e.weights_total > 4.5 * GiB && e.weights_total < 4.65 * GiB);
	assert_true(e.a.n_params > 8000000000ull && e.a.n_params < 8100000000ull);
	est_free(&e);
	o.type_k = o.type_v = 8; /* q8_0: 34 bytes per 32 values */
	assert_int_equal(est_build(g, &o, &e, err, sizeof err), 0);
	assert_int_equal(e.kv_total, 32ull * 8192 * 2 * (1024 / 32 * 34));
	est_free(&e);
	o.n_ctx = 1000; /* padded to 256 cells */
	o.type_k = o.type_v = 1;
	assert_int_equal(est_build(g, &o, &e, err, sizeof err), 0);
	assert_int_equal(e.n_ctx, 1024);
	est_free(&e);
	gguf_close(g);
}

static void plan_shrinks_with_budget(void **state)
{
	struct gguf *g = gen("llama3-8b", NULL);
	struct est_opts o;
	struct est e;
	char err[256];
	est_defaults(&o);
	o.n_ctx = 8192;
	assert_int_equal(est_build(g, &o, &e, err, sizeof err), 0);
	struct plan_opts po = { .ngl = -1 };
	struct plan_device d = { "GPU0", 0, "" };
	int prev = 1000;
	for (uint64_t vram = 12 * GiB; vram >= 1 * GiB; vram -= GiB / 2) {
		struct plan p;
		d.budget = vram;
		assert_int_equal(plan_make(&e, &d, &po, &p, err, sizeof err), 0);
		assert_true(p.fits);
		assert_true(p.dev.total <= vram);
		assert_true(p.ngl <= prev);
		prev = p.ngl;
		char n[16];
		snprintf(n, sizeof n, "%d", p.ngl);
		assert_true(has_arg(&p, "-ngl", n));
		assert_true(has_arg(&p, "--fit", "off"));
		assert_true(has_arg(&p, "-c", "8192"));
		if (vram >= 8 * GiB)
			assert_int_equal(p.ngl, 33);
		plan_free(&p);
	}
	assert_true(prev < 10);
	/* offload=gpu refuses to offload and says why */
	po.offload = PLAN_GPU;
	d.budget = 4 * GiB;
	struct plan p;
	assert_int_equal(plan_make(&e, &d, &po, &p, err, sizeof err), 0);
	assert_false(p.fits);
	assert_non_null(strstr(p.reason, "needs"));
	plan_free(&p);
	/* offload=cpu puts nothing on the device */
	po.offload = PLAN_CPU;
	assert_int_equal(plan_make(&e, &d, &po, &p, err, sizeof err), 0);
	assert_true(p.fits);
	assert_int_equal(p.ngl, 0);
	assert_int_equal(p.dev.total, 0);
	assert_true(p.cpu.model >= e.weights_total);
	plan_free(&p);
	est_free(&e);
	gguf_close(g);
}

static void moe_experts_go_first(void **state)
{
	struct gguf *g = gen("qwen3moe-30b", NULL);
	struct est_opts o;
	struct est e;
	char err[256];
	est_defaults(&o);
	o.n_ctx = 4096;
	assert_int_equal(est_build(g, &o, &e, err, sizeof err), 0);
	assert_int_equal(e.a.n_expert, 128);
	assert_true(e.layer[0].exps > e.layer[0].weights * 9 / 10);
	struct plan_opts po = { .ngl = -1 };
	struct plan_device d = { "GPU0", 8 * GiB, "" };
	struct plan p;
	assert_int_equal(plan_make(&e, &d, &po, &p, err, sizeof err), 0);
	assert_true(p.fits);
	/* 17 GiB of weights in 8 GiB: all layers stay, the experts of the first go */
	assert_int_equal(p.ngl, 49);
	assert_true(p.n_cpu_moe > 0 && p.n_cpu_moe < 48);
	char n[16];
	snprintf(n, sizeof n, "%d", p.n_cpu_moe);
	assert_true(has_arg(&p, "--n-cpu-moe", n));
	assert_true(p.dev.total <= d.budget);
	plan_free(&p);
	/* a pattern forces tensors to the CPU and becomes -ot */
	po.cpu_patterns[0] = "exps";
	po.n_cpu_patterns = 1;
	assert_int_equal(plan_make(&e, &d, &po, &p, err, sizeof err), 0);
	assert_true(has_arg(&p, "-ot", "exps=CPU"));
	assert_int_equal(p.n_cpu_moe, 0);
	assert_int_equal(p.ngl, 49);
	assert_true(p.dev.model < 2 * GiB);
	plan_free(&p);
	po.cpu_patterns[0] = "blk.4[0-7].*";
	assert_int_equal(plan_make(&e, &d, &po, &p, err, sizeof err), 0);
	assert_true(has_arg(&p, "-ot", "blk\\.4[0-7]\\..*=CPU"));
	plan_free(&p);
	est_free(&e);
	gguf_close(g);
}

static void tied_output_and_bias(void **state)
{
	struct gguf *g = gen("llama3.2-1b", NULL);
	struct est_opts o;
	struct est e;
	char err[256];
	est_defaults(&o);
	assert_int_equal(est_build(g, &o, &e, err, sizeof err), 0);
	/* no output.weight: llama.cpp copies the embeddings to the output's device */
	assert_int_equal(gguf_find_tensor(g, "output.weight"), -1);
	int64_t te = gguf_find_tensor(g, "token_embd.weight");
	assert_true(te >= 0);
	assert_true(e.output_bytes >= est_tensor_bytes(&g->tensors[te]));
	assert_int_equal(e.n_ctx, 131072);
	est_free(&e);
	gguf_close(g);
	g = gen("qwen2-7b", NULL);
	assert_true(gguf_find_tensor(g, "blk.0.attn_q.bias") >= 0);
	gguf_close(g);
}

static void projector_counted(void **state)
{
	struct gguf *g = gen("small-llama", NULL);
	struct est_opts o;
	struct est e, e2;
	char err[256];
	est_defaults(&o);
	o.n_ctx = 4096;
	assert_int_equal(est_build(g, &o, &e, err, sizeof err), 0);
	o.mmproj_bytes = 300 * MiB;
	assert_int_equal(est_build(g, &o, &e2, err, sizeof err), 0);
	struct plan_opts po = { .ngl = -1, .mmproj = "proj.gguf" };
	struct plan_device d = { "GPU0", 8 * GiB, "" };
	struct plan p, p2;
	assert_int_equal(plan_make(&e, &d, &po, &p, err, sizeof err), 0);
	assert_int_equal(plan_make(&e2, &d, &po, &p2, err, sizeof err), 0);
	/* the projector goes to the device with the model */
	assert_int_equal(p2.dev.model, p.dev.model + 300 * MiB);
	assert_true(has_arg(&p2, "--mmproj", "proj.gguf"));
	assert_false(has_arg(&p2, "--no-mmproj-offload", NULL));
	plan_free(&p2);
	/* unless a pattern keeps it on the CPU */
	po.cpu_patterns[0] = "mmproj";
	po.n_cpu_patterns = 1;
	assert_int_equal(plan_make(&e2, &d, &po, &p2, err, sizeof err), 0);
	assert_int_equal(p2.dev.model, p.dev.model);
	assert_int_equal(p2.cpu.model, p.cpu.model + 300 * MiB);
	assert_true(has_arg(&p2, "--no-mmproj-offload", NULL));
	plan_free(&p2);
	/* with a budget the model fits only without it, the projector leaves for the CPU
	 * before a single layer does, and the plan says what that saved */
	po.n_cpu_patterns = 0;
	d.budget = p.dev.total + 100 * MiB;
	assert_int_equal(plan_make(&e2, &d, &po, &p2, err, sizeof err), 0);
	assert_true(p2.fits);
	assert_int_equal(p2.ngl, p.ngl);
	assert_int_equal(p2.dev.model, p.dev.model);
	assert_true(p2.mmproj_cpu);
	assert_true(has_arg(&p2, "--no-mmproj-offload", NULL));
	assert_non_null(strstr(p2.reason, "300.00 MiB"));
	plan_free(&p2);
	plan_free(&p);
	est_free(&e);
	est_free(&e2);
	gguf_close(g);
}

/* The encoder of Gemma-3's projector as clip.cpp reserves it (docs/estimator.md,
 * "Encoders"): 4096 positions of width 1152, FFN 4304, 16 heads at the 896-pixel
 * warmup; with flash attention the FFN's peak, without it the attention scores. A
 * model that fits a device only without its encoder keeps every layer there and moves
 * the encoder to the CPU, saving its weights and compute buffer. */
static void encoder_planned(void **state)
{
	(void)state;
	char err[4096], *mp = tu_path("gemma3-mmproj.gguf");
	assert_int_equal(shapes_mmproj_write(shapes_mmproj_find("gemma3-mmproj"), 0, 1, mp, err,
	    sizeof err), 0);
	struct gguf *pg = gguf_open(mp, err, sizeof err);
	assert_non_null(pg);
	struct est_clip c;
	assert_int_equal(est_clip_read(pg, -1, &c, err, sizeof err), 0);
	const uint64_t P = 4096, E = 1152, F = 4304, H = 16;
	assert_string_equal(c.proj_type, "gemma3");
	assert_false(c.generic);
	assert_int_equal(c.n_pos, P);
	assert_int_equal(c.compute, 4 * (3 * P * E + P * F)); /* 121.25 MiB, as measured */
	assert_int_equal(c.input, 3ull * 896 * 896 * 4);
	assert_true(c.weights > 800 * MiB && c.weights < 810 * MiB);
	assert_int_equal(est_clip_read(pg, 0, &c, err, sizeof err), 0);
	assert_int_equal(c.compute, 4 * (6 * P * E + H * P * P));
	gguf_close(pg);
	/* not a projector */
	struct gguf *g = gen("gemma3-4b", NULL);
	assert_int_equal(est_clip_read(g, -1, &c, err, sizeof err), -1);
	assert_non_null(strstr(err, "not a multimodal projector"));
	/* the plan: both fit, then only the model */
	struct est_opts o;
	est_defaults(&o);
	o.n_ctx = 8192;
	struct est e0, e;
	assert_int_equal(est_build(g, &o, &e0, err, sizeof err), 0);
	assert_int_equal(model_mmproj(mp, &o, NULL, err, sizeof err), 0);
	assert_int_equal(est_build(g, &o, &e, err, sizeof err), 0);
	struct plan_opts po = { .ngl = -1, .mmproj = mp };
	struct plan_device d = { "GPU0", 64 * GiB, "" };
	struct plan p0, p;
	assert_int_equal(plan_make(&e0, &d, &po, &p0, err, sizeof err), 0);
	assert_int_equal(plan_make(&e, &d, &po, &p, err, sizeof err), 0);
	assert_false(p.mmproj_cpu);
	assert_int_equal(p.dev.compute, p0.dev.compute + 4 * (3 * P * E + P * F));
	assert_int_equal(p.cpu.compute, p0.cpu.compute + 3ull * 896 * 896 * 4);
	assert_int_equal(plan_mmproj_saving(&e), e.o.mmproj_bytes + e.o.mmproj_compute);
	plan_free(&p);
	d.budget = p0.dev.total + 10 * MiB;
	assert_int_equal(plan_make(&e, &d, &po, &p, err, sizeof err), 0);
	assert_true(p.fits);
	assert_true(p.mmproj_cpu);
	assert_int_equal(p.ngl, p0.ngl);
	assert_int_equal(p.dev.total, p0.dev.total);
	assert_int_equal(p.cpu.compute, p0.cpu.compute + 4 * (3 * P * E + P * F));
	assert_true(has_arg(&p, "--no-mmproj-offload", NULL));
	assert_non_null(strstr(p.reason, "saving 922.7")); /* 801.5 + 121.25 MiB */
	plan_free(&p);
	plan_free(&p0);
	est_free(&e);
	est_free(&e0);
	gguf_close(g);
	unlink(mp);
	free(mp);
}

static void bad_options_refused(void **state)
{
	struct gguf *g = gen("tiny", NULL);
	struct est_opts o;
	struct est e;
	char err[256];
	est_defaults(&o);
	o.n_ctx = (1u << 24) + 1;
	assert_int_equal(est_build(g, &o, &e, err, sizeof err), -1);
	assert_non_null(strstr(err, "context"));
	o.n_ctx = 0; /* the model's own: 4096 */
	assert_int_equal(est_build(g, &o, &e, err, sizeof err), 0);
	assert_int_equal(e.n_ctx, 4096);
	uint32_t t;
	assert_int_equal(est_cache_type("q8_0", &t), 0);
	assert_int_equal(t, 8);
	assert_int_equal(est_cache_type("q3_k", &t), -1);
	struct plan_opts po = { .ngl = -1 };
	po.cpu_patterns[0] = "";
	po.n_cpu_patterns = 1;
	struct plan_device d = { "GPU0", GiB, "" };
	struct plan p;
	assert_int_equal(plan_make(&e, &d, &po, &p, err, sizeof err), -1);
	assert_non_null(strstr(err, "pattern"));
	est_free(&e);
	gguf_close(g);
}

/* An embedding model (tiny-embed: <arch>.pooling_type 1) is planned as llama-server runs
 * it: started with --embeddings and its pooling, n_batch lowered to n_ubatch, and a
 * compute buffer that holds the logits of every token of the micro-batch (measured:
 * 64.6 MiB on the CPU for tiny-embed at -c 2048, 3.0 MiB for tiny). */
static void embedding_model_plans_embeddings(void **state)
{
	struct gguf *ge = gen("tiny-embed", NULL), *gt = gen("tiny", NULL);
	struct est_opts o;
	struct est ee, et;
	char err[256];
	est_defaults(&o);
	o.n_ctx = 2048;
	assert_int_equal(est_build(ge, &o, &ee, err, sizeof err), 0);
	assert_int_equal(est_build(gt, &o, &et, err, sizeof err), 0);
	assert_int_equal(ee.a.pooling, 1);
	assert_int_equal(et.a.pooling, 0);
	assert_int_equal(ee.o.n_batch, ee.o.n_ubatch);
	assert_int_equal(et.o.n_batch, 2048);
	struct plan_opts po = { .ngl = -1 };
	struct plan_device d = { "GPU0", GiB, "" };
	struct plan pe, pt;
	assert_int_equal(plan_make(&ee, &d, &po, &pe, err, sizeof err), 0);
	assert_int_equal(plan_make(&et, &d, &po, &pt, err, sizeof err), 0);
	assert_true(has_arg(&pe, "--embeddings", NULL));
	assert_true(has_arg(&pe, "--pooling", "mean"));
	assert_false(has_arg(&pt, "--embeddings", NULL));
	assert_false(has_arg(&pt, "--pooling", NULL));
	/* the weights and the KV cache are the same; the logits of 512 tokens are not */
	assert_int_equal(pe.dev.model, pt.dev.model);
	assert_int_equal(pe.dev.kv, pt.dev.kv);
	uint64_t logits = 32000ull * 512 * 4;
	assert_true(pe.dev.compute >= logits && pe.dev.compute < logits + 3 * MiB);
	assert_true(pt.dev.compute < 4 * MiB);
	plan_free(&pe);
	plan_free(&pt);
	/* all on the CPU, the CPU runs the output head and holds those logits */
	po.offload = PLAN_CPU;
	assert_int_equal(plan_make(&ee, &d, &po, &pe, err, sizeof err), 0);
	assert_true(has_arg(&pe, "--embeddings", NULL));
	assert_true(pe.cpu.compute >= logits);
	plan_free(&pe);
	est_free(&ee);
	est_free(&et);
	gguf_close(ge);
	gguf_close(gt);
}

/* A model of an architecture the rules were never checked on is planned, not refused:
 * the same weights and KV as the transformer it resembles, compute buffers with the
 * stated margin, and the plan says the estimate is generic. */
static void unknown_architecture_planned_generic(void **state)
{
	struct shape s = *shapes_find("small-llama");
	s.arch = "futurelm";
	char err[4096], *path = tu_path("future.gguf"), *vocab = shapes_vocab_path(s.vocab);
	struct shapes_opts so = { NULL, vocab, 0, 1, 1 };
	assert_int_equal(shapes_write(&s, &so, path, err, sizeof err), 0);
	struct gguf *g = gguf_open(path, err, sizeof err), *ref = gen("small-llama", NULL);
	assert_non_null(g);
	struct est_opts o;
	est_defaults(&o);
	o.n_ctx = 4096;
	struct est e, er;
	assert_int_equal(est_build(g, &o, &e, err, sizeof err), 0);
	assert_int_equal(est_build(ref, &o, &er, err, sizeof err), 0);
	assert_true(e.generic);
	assert_false(er.generic);
	assert_int_equal(e.kv_total, er.kv_total);
	assert_int_equal(e.weights_total, er.weights_total);
	struct plan_opts po = { .ngl = -1 };
	struct plan_device dev = { .name = "GPU0", .budget = 1024 * MiB };
	struct plan p, pr;
	assert_int_equal(plan_make(&e, &dev, &po, &p, err, sizeof err), 0);
	assert_int_equal(plan_make(&er, &dev, &po, &pr, err, sizeof err), 0);
	assert_true(p.fits);
	assert_int_equal(p.dev.compute, pr.dev.compute + pr.dev.compute / EST_GENERIC_MARGIN);
	assert_int_equal(p.cpu.compute, pr.cpu.compute + pr.cpu.compute / EST_GENERIC_MARGIN);
	plan_free(&p);
	plan_free(&pr);
	est_free(&e);
	est_free(&er);
	gguf_close(g);
	gguf_close(ref);
	unlink(path);
	free(vocab);
	free(path);
}

/* docs/accuracy.md shows the plans the planner makes now: every case of
 * tests/accuracy_cases.h is there with the arguments and planned figures it gets today,
 * and nothing else is (tools/accuracy.sh regenerates the document with llama-server;
 * this check needs none). */
static int multi_arg(const struct plan_multi *p, const char *a, const char *v)
{
	for (size_t i = 0; i + 1 < p->n_args; i++)
		if (strcmp(p->args[i], a) == 0 && strcmp(p->args[i + 1], v) == 0)
			return 1;
	return 0;
}

/* Every device used holds its units within its budget, the units cover the last ngl
 * in order and the output head is on the last device. */
static void multi_consistent(const struct est *e, const struct plan_multi *p)
{
	int u = (int)e->a.n_layer + 1 - p->ngl;
	for (int i = 0; i < p->n_dev; i++) {
		assert_int_equal(p->dev[i].first, u);
		assert_true(p->dev[i].count > 0);
		assert_true(p->dev[i].use.total <= p->dev[i].budget);
		assert_int_equal(p->dev[i].output, i == p->n_dev - 1);
		u += p->dev[i].count;
	}
	assert_int_equal(u, (int)e->a.n_layer + 1);
}

/* The rules over several devices (docs/estimator.md): one device when one holds the
 * model (the smallest that does), a split only when none does, budgets respected,
 * uneven budgets split unevenly, experts to the CPU after the split, split=never. */
static void several_devices(void **state)
{
	(void)state;
	struct gguf *g = gen("llama3-8b", NULL);
	struct est_opts o;
	struct est e;
	char err[256];
	est_defaults(&o);
	o.n_ctx = 4096;
	assert_int_equal(est_build(g, &o, &e, err, sizeof err), 0);
	struct plan_opts po = { .ngl = -1 };
	struct plan whole;
	struct plan_device big = { "CUDA0", 64 * GiB, "" };
	assert_int_equal(plan_make(&e, &big, &po, &whole, err, sizeof err), 0);
	uint64_t T = whole.dev.total;
	plan_free(&whole);
	struct plan_multi p;
	/* fits both: the smaller budget that holds it, named alone in --device */
	struct plan_device d2[2] = { { "CUDA0", 4 * T, "" }, { "CUDA1", T + T / 10, "" } };
	assert_int_equal(plan_multi_make(&e, d2, 2, &po, PLAN_SPLIT_AUTO, &p, err, sizeof err), 0);
	assert_true(p.fits);
	assert_int_equal(p.n_dev, 1);
	assert_string_equal(p.dev[0].name, "CUDA1");
	assert_true(multi_arg(&p, "--device", "CUDA1"));
	multi_consistent(&e, &p);
	plan_multi_free(&p);
	/* neither holds it: split over both, each within its budget */
	d2[0].budget = d2[1].budget = T * 6 / 10;
	assert_int_equal(plan_multi_make(&e, d2, 2, &po, PLAN_SPLIT_AUTO, &p, err, sizeof err), 0);
	assert_true(p.fits);
	assert_int_equal(p.n_dev, 2);
	assert_int_equal(p.ngl, 33);
	multi_consistent(&e, &p);
	assert_true(multi_arg(&p, "--device", "CUDA0,CUDA1"));
	char ts[32];
	snprintf(ts, sizeof ts, "%d,%d", p.dev[0].count, p.dev[1].count);
	assert_true(multi_arg(&p, "--tensor-split", ts));
	plan_multi_free(&p);
	/* 2:1 budgets: the first takes about twice the layers */
	d2[0].budget = T * 8 / 10;
	d2[1].budget = T * 4 / 10;
	assert_int_equal(plan_multi_make(&e, d2, 2, &po, PLAN_SPLIT_AUTO, &p, err, sizeof err), 0);
	assert_true(p.fits);
	assert_int_equal(p.n_dev, 2);
	assert_true(p.dev[0].count > p.dev[1].count);
	multi_consistent(&e, &p);
	plan_multi_free(&p);
	/* split never: the larger device alone, the rest of the layers on the CPU */
	assert_int_equal(plan_multi_make(&e, d2, 2, &po, PLAN_SPLIT_NEVER, &p, err, sizeof err), 0);
	assert_int_equal(p.n_dev, 1);
	assert_string_equal(p.dev[0].name, "CUDA0");
	assert_true(p.ngl < 33 && p.ngl > 0);
	assert_true(p.dev[0].use.total <= d2[0].budget);
	plan_multi_free(&p);
	/* RPC servers: --rpc names only those used, renumbered as the child sees them */
	struct plan_device r2[2] = { { "RPC0", 4 * T, "h:1" }, { "RPC1", T + T / 10, "h:2" } };
	assert_int_equal(plan_multi_make(&e, r2, 2, &po, PLAN_SPLIT_AUTO, &p, err, sizeof err), 0);
	assert_string_equal(p.dev[0].name, "RPC1");
	assert_true(multi_arg(&p, "--rpc", "h:2") && multi_arg(&p, "--device", "RPC0"));
	plan_multi_free(&p);
	r2[0].budget = r2[1].budget = T * 6 / 10;
	assert_int_equal(plan_multi_make(&e, r2, 2, &po, PLAN_SPLIT_AUTO, &p, err, sizeof err), 0);
	assert_true(multi_arg(&p, "--rpc", "h:1,h:2") && multi_arg(&p, "--device", "RPC0,RPC1"));
	plan_multi_free(&p);
	est_free(&e);
	gguf_close(g);
	/* MoE over two devices that cannot hold all: both full, experts to the CPU */
	g = gen("qwen3moe-30b", NULL);
	assert_int_equal(est_build(g, &o, &e, err, sizeof err), 0);
	d2[0].budget = 8 * GiB;
	d2[1].budget = 4 * GiB;
	assert_int_equal(plan_multi_make(&e, d2, 2, &po, PLAN_SPLIT_AUTO, &p, err, sizeof err), 0);
	assert_true(p.fits);
	assert_int_equal(p.n_dev, 2);
	assert_int_equal(p.ngl, 49);
	assert_true(p.n_cpu_moe > 0 && p.n_cpu_moe < 48);
	multi_consistent(&e, &p);
	snprintf(ts, sizeof ts, "%d", p.n_cpu_moe);
	assert_true(multi_arg(&p, "--n-cpu-moe", ts));
	plan_multi_free(&p);
	est_free(&e);
	gguf_close(g);
}

static void accuracy_doc_is_current(void **state)
{
	const char *src = getenv("MLO_SOURCE_DIR");
	assert_non_null(src);
	char *docp = xasprintf("%s/docs/accuracy.md", src);
	size_t len;
	char *doc = (char *)tu_read_file(docp, &len);
	assert_non_null(doc);
	doc = xrealloc(doc, len + 1);
	doc[len] = '\0';
	size_t rows = 0, stale = 0, rows_want = ACC_N_CASES * ACC_N_PARTS;
	for (const char *l = doc; l != NULL && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL)
		rows += strncmp(l, "| ", 2) == 0 && strncmp(l, "| model | plan |", 16) != 0;
	for (size_t i = 0; i < ACC_N_CASES; i++) {
		const struct tcase *c = &acc_cases[i];
		char name[128], err[4096], label[256], model[128], row[512];
		snprintf(name, sizeof name, "acc-%zu.gguf", i);
		char *path = tu_path(name), *vocab = shapes_vocab_path(shapes_find(c->shape)->vocab);
		struct shapes_opts so = { c->quant, vocab, 0, 1, 1 };
		if (shapes_write(shapes_find(c->shape), &so, path, err, sizeof err) < 0)
			fail_msg("%s", err);
		char *mm = NULL;
		if (c->mmproj != NULL) {
			snprintf(name, sizeof name, "%s.gguf", c->mmproj);
			mm = tu_path(name);
			if (shapes_mmproj_write(shapes_mmproj_find(c->mmproj), 0, 1, mm, err,
			    sizeof err) < 0)
				fail_msg("%s", err);
			rows_want += ACC_N_ENC;
		}
		struct gguf *g;
		struct est e;
		struct plan p;
		if (acc_plan(c, path, mm, 50052, &g, &e, &p, err, sizeof err) < 0)
			fail_msg("%s: %s", c->shape, err);
		acc_label(&p, label, sizeof label);
		snprintf(model, sizeof model, "%s %s", c->shape, e.a.quant);
		double mib[ACC_N_PARTS];
		acc_planned(&p, mib);
		for (int k = 0; k < ACC_N_PARTS; k++) {
			snprintf(row, sizeof row, "\n| %s | %s | %s | %s | %.2f |", model, label,
			    acc_part_dev[k], acc_part_name[k], mib[k]);
			if (strstr(doc, row) == NULL) {
				fprintf(stderr, "docs/accuracy.md lacks %s (run tools/accuracy.sh)\n", row + 1);
				stale++;
			}
		}
		double enc[ACC_N_ENC];
		acc_enc_planned(&e, enc);
		for (int k = 0; mm != NULL && k < ACC_N_ENC; k++) {
			snprintf(row, sizeof row, "\n| %s | %s | %s | %s | %.2f |", model, label,
			    acc_enc_dev(&p), acc_enc_name[k], enc[k]);
			if (strstr(doc, row) == NULL) {
				fprintf(stderr, "docs/accuracy.md lacks %s (run tools/accuracy.sh)\n", row + 1);
				stale++;
			}
		}
		plan_free(&p);
		est_free(&e);
		gguf_close(g);
		unlink(path);
		if (mm != NULL)
			unlink(mm);
		free(mm);
		free(vocab);
		free(path);
	}
	if (rows != rows_want)
		fprintf(stderr, "docs/accuracy.md has %zu rows, the cases make %zu\n", rows,
		    rows_want);
	assert_int_equal(stale, 0);
	assert_int_equal(rows, rows_want);
	free(doc);
	free(docp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(llama8b_kv_and_weights),
		cmocka_unit_test(plan_shrinks_with_budget),
		cmocka_unit_test(moe_experts_go_first),
		cmocka_unit_test(tied_output_and_bias),
		cmocka_unit_test(projector_counted),
		cmocka_unit_test(encoder_planned),
		cmocka_unit_test(bad_options_refused),
		cmocka_unit_test(embedding_model_plans_embeddings),
		cmocka_unit_test(unknown_architecture_planned_generic),
		cmocka_unit_test(several_devices),
		cmocka_unit_test(accuracy_doc_is_current),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
