/*
 * test_llama: the estimator and planner against real llama.cpp. For generated models
 * (tiny and shape-only, dense and MoE) and several plans each, real llama-server runs
 * with the plan's arguments and one ggml-rpc-server on loopback standing in for the
 * GPU; its log (-lv 4) reports the buffer sizes it allocated on each device, which
 * must match the plan: model and KV buffers within 1% (or 1 MiB), totals within 5%,
 * compute buffers within 20% under and 25% over on the fitting set and, on the
 * held-out set (shapes never used to fit, tests/accuracy_cases.h), at most 10% over
 * and 5% under. Also: a tiny generated model answers a chat request, and a split
 * model loads in llama-server as in mloffload.
 *
 * With MLO_ACCURACY_OUT set, the table of predicted against measured is written there
 * (tools/accuracy.sh regenerates docs/accuracy.md that way).
 */
#include "testutil.h"
#include "accuracy_cases.h"

#include "estimate.h"
#include "gguf.h"
#include "plan.h"
#include "shapes.h"
#include "util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MiB (1024.0 * 1024.0)

static char *root;
static char *bin_dir;
static int rpc_port, rpc2_port;
static struct tu_proc rpc, rpc2;
static FILE *table;

/* Starts a ggml-rpc-server on a free loopback port; 0 once it accepts, else -1. */
static int start_rpc(struct tu_proc *pr, int *portn, const char *logname)
{
	*portn = tu_free_port();
	char port[16], *exe = xasprintf("%s/ggml-rpc-server", bin_dir);
	snprintf(port, sizeof port, "%d", *portn);
	char *argv[] = { exe, "-H", "127.0.0.1", "-p", port, NULL };
	char *log = tu_path(logname);
	int rc = tu_spawn(pr, argv, log);
	free(log);
	free(exe);
	/* its banner is block-buffered into the log: wait for the port instead */
	for (int i = 0; rc == 0 && i < 300 && !tu_port_open(*portn); i++)
		usleep(100 * 1000);
	return rc < 0 || !tu_port_open(*portn) ? -1 : 0;
}

static int setup(void **state)
{
	root = tu_llama_root();
	if (root == NULL) {
		fprintf(stderr, "llama.cpp is not built: run scripts/setup-llama.sh "
		    "(scripts/test.sh does)\n");
		return -1;
	}
	bin_dir = xasprintf("%s/build/bin", root);
	if (start_rpc(&rpc, &rpc_port, "rpc.log") < 0 || start_rpc(&rpc2, &rpc2_port, "rpc2.log") < 0)
		return -1;
	const char *out = getenv("MLO_ACCURACY_OUT");
	if (out != NULL && *out != '\0') {
		table = fopen(out, "w");
		if (table == NULL)
			return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	tu_stop(&rpc);
	tu_stop(&rpc2);
	if (table != NULL)
		fclose(table);
	free(bin_dir);
	free(root);
	return 0;
}

static char *gen_model(const char *shape, const char *quant, int split)
{
	char name[160], err[4096];
	snprintf(name, sizeof name, split > 1 ? "%s-%s-00001-of-%05d.gguf" : "%s-%s.gguf",
	    shape, quant ? quant : "default", split);
	char *path = tu_path(name);
	const struct shape *s = shapes_find(shape);
	assert_non_null(s);
	char *vocab = shapes_vocab_path(s->vocab);
	struct shapes_opts o = { quant, vocab, -1, 7, split };
	if (shapes_write(s, &o, path, err, sizeof err) < 0)
		fail_msg("gen %s: %s", shape, err);
	free(vocab);
	return path;
}

/* Measured MiB per (device prefix, kind) from llama-server's log, summed over lines. */
static double measured(const char *log, const char *dev, const char *kind)
{
	double sum = 0;
	char pat[64];
	snprintf(pat, sizeof pat, " %s buffer size =", kind);
	for (const char *p = strstr(log, pat); p != NULL; p = strstr(p + 1, pat)) {
		const char *ls = p;
		while (ls > log && ls[-1] != '\n')
			ls--;
		const char *d = p;
		while (d > ls && d[-1] == ' ')
			d--;
		while (d > ls && d[-1] != ' ')
			d--;
		if (strncmp(d, dev, strlen(dev)) != 0)
			continue;
		sum += strtod(p + strlen(pat), NULL);
	}
	return sum;
}

/* planned against measured: within abs_mib, or err in [-under, over] */
static int check_range(const char *model, const char *plan, const char *dev,
    const char *part, double planned, double meas, double under, double over, double abs_mib)
{
	double err = meas > 0 ? (planned - meas) / meas : (planned > 0 ? 1 : 0);
	int ok = fabs(planned - meas) <= abs_mib || (err >= -under && err <= over);
	if (table != NULL)
		fprintf(table, "| %s | %s | %s | %s | %.2f | %.2f | %+.1f%% |\n", model, plan, dev,
		    part, planned, meas, err * 100);
	if (!ok)
		fprintf(stderr, "MISMATCH %s [%s] %s %s: planned %.2f MiB, measured %.2f MiB "
		    "(%+.1f%%)\n", model, plan, dev, part, planned, meas, err * 100);
	return ok;
}

static int check(const char *model, const char *plan, const char *dev, const char *part,
    double planned, double meas, double rel, double abs_mib)
{
	return check_range(model, plan, dev, part, planned, meas, rel, rel, abs_mib);
}

/* Writes projector shape name into the test folder as NAME.gguf (heap path). */
static char *gen_mmproj(const char *name)
{
	char file[160], err[4096];
	snprintf(file, sizeof file, "%s.gguf", name);
	char *path = tu_path(file);
	const struct shape_mmproj *s = shapes_mmproj_find(name);
	assert_non_null(s);
	if (shapes_mmproj_write(s, -1, 7, path, err, sizeof err) < 0)
		fail_msg("gen %s: %s", name, err);
	return path;
}

/* The value after "key" in the first line of log that has it, or 0. */
static double log_value(const char *log, const char *key)
{
	const char *p = strstr(log, key);
	return p ? strtod(p + strlen(key), NULL) : 0;
}

/* The encoder's rows: its weights (clip.cpp logs their sum as "model size") and its
 * compute buffer on the device that runs it (reserve_compute_meta's lines). */
static int check_encoder(const char *model, const char *label, const struct tcase *c,
    const struct est *e, const struct plan *p, const char *log)
{
	double mib[ACC_N_ENC];
	acc_enc_planned(e, mib);
	const char *dev = acc_enc_dev(p);
	char want[64];
	snprintf(want, sizeof want, "CLIP using %s", p->mmproj_cpu ? "CPU" : "RPC0[");
	if (strstr(log, want) == NULL) {
		fprintf(stderr, "llama-server did not log '%s'\n", want);
		return 0;
	}
	double comp = 0;
	for (const char *l = strstr(log, "reserve_compute_meta:"); l != NULL;
	    l = strstr(l + 1, "reserve_compute_meta:")) {
		const char *eol = strchr(l, '\n'), *b = strstr(l, " compute buffer size =");
		if (b == NULL || (eol != NULL && b > eol))
			continue;
		const char *d = l + strlen("reserve_compute_meta:");
		while (*d == ' ')
			d++;
		if (strncmp(d, p->mmproj_cpu ? "CPU " : "RPC0[", p->mmproj_cpu ? 4 : 5) == 0)
			comp += strtod(b + strlen(" compute buffer size ="), NULL);
	}
	double under = c->held_out ? 0.05 : 0.20, over = c->held_out ? 0.10 : 0.25;
	int ok = check(model, label, dev, acc_enc_name[0], mib[0],
	    log_value(log, "load_hparams: model size:"), 0.01, 1);
	return ok & check_range(model, label, dev, acc_enc_name[1], mib[1], comp, under, over,
	    0.1);
}

static int run_case(const struct tcase *c)
{
	char *path = gen_model(c->shape, c->quant, 1);
	char *mm = c->mmproj ? gen_mmproj(c->mmproj) : NULL;
	char err[4096];
	struct gguf *g;
	struct est e;
	struct plan p;
	if (acc_plan(c, path, mm, rpc_port, &g, &e, &p, err, sizeof err) < 0)
		fail_msg("plan %s: %s", c->shape, err);
	assert_true(p.fits);

	char port[16];
	snprintf(port, sizeof port, "%d", tu_free_port());
	char *exe = xasprintf("%s/llama-server", bin_dir);
	char *argv[64];
	size_t n = 0;
	/* clip.cpp reserves the encoder's buffers in its warmup only */
	char *fixed[] = { exe, "-m", path, "--port", port, "--host", "127.0.0.1", "-lv", "4",
	    "-t", "2", mm ? "--warmup" : "--no-warmup" };
	for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
		argv[n++] = fixed[i];
	for (size_t i = 0; i < p.n_args && n < 63; i++)
		argv[n++] = p.args[i];
	argv[n] = NULL;
	char label[256];
	acc_label(&p, label, sizeof label);
	char *logp = tu_path("server.log");
	struct tu_proc srv;
	assert_int_equal(tu_spawn(&srv, argv, logp), 0);
	int ready = tu_wait_log(&srv, "listening on", 600); /* GBs through RPC, 2 cores */
	size_t len;
	char *log = (char *)tu_read_file(logp, &len);
	log = xrealloc(log, len + 1);
	log[len] = 0;
	tu_stop(&srv);
	if (ready != 1)
		fail_msg("llama-server did not start for %s:\n%s", c->shape, log + (len > 3000 ?
		    len - 3000 : 0));

	char model[64];
	snprintf(model, sizeof model, "%s %s", c->shape, e.a.quant);
	const char *rpcdev = "RPC0[";
	/* a recurrent layer's state (RS) is planned with the KV cache of its layer */
	double m_model = measured(log, rpcdev, "model");
	if (mm != NULL && !p.mmproj_cpu) /* the encoder's weights buffer is not in the list */
		m_model += log_value(log, "load_hparams: model size:");
	double m_kv = measured(log, rpcdev, "KV") + measured(log, rpcdev, "RS");
	double m_comp = measured(log, rpcdev, "compute");
	int ok = 1;
	ok &= check(model, label, "RPC0", "model", p.dev.model / MiB, m_model, 0.01, 1);
	ok &= check(model, label, "RPC0", "KV", p.dev.kv / MiB, m_kv, 0.01, 1);
	/* over-predictions are the safe side: the fitting set allows a little more */
	double under = c->held_out ? 0.05 : 0.20, over = c->held_out ? 0.10 : 0.25;
	if (c->known_over > over)
		over = c->known_over;
	ok &= check_range(model, label, "RPC0", "compute", p.dev.compute / MiB, m_comp, under,
	    over, 1);
	ok &= check(model, label, "RPC0", "total", p.dev.total / MiB, m_model + m_kv + m_comp,
	    0.05, 1);
	double c_model = measured(log, "CPU_Mapped", "model");
	double c_repack = measured(log, "CPU_REPACK", "model");
	double c_kv = measured(log, "CPU", "KV") + measured(log, "CPU", "RS");
	double c_comp = measured(log, "CPU", "compute") + measured(log, "CPU", "output");
	/*
	 * CPU_Mapped is the span of the file from the first to the last CPU tensor that is
	 * not repacked, device tensors in between included: the plan predicts that span.
	 * Its CPU total counts a repacked tensor twice (file pages and copy) where
	 * llama.cpp counts the copy only, so the report is compared with the span.
	 */
	ok &= check(model, label, "CPU", "model (mapped)", p.cpu.mapped / MiB, c_model, 0.01, 1);
	ok &= check(model, label, "CPU", "repack", p.cpu.repack / MiB, c_repack, 0.01, 1);
	ok &= check(model, label, "CPU", "KV", p.cpu.kv / MiB, c_kv, 0.01, 1);
	ok &= check_range(model, label, "CPU", "compute", p.cpu.compute / MiB, c_comp, under,
	    over, 1);
	ok &= check(model, label, "CPU", "total", (p.cpu.mapped + p.cpu.repack + p.cpu.kv +
	    p.cpu.compute) / MiB, c_model + c_repack + c_kv + c_comp, 0.05, 1);
	if (mm != NULL)
		ok &= check_encoder(model, label, c, &e, &p, log);
	/* the layer count llama.cpp reports is the plan's */
	char want[64];
	snprintf(want, sizeof want, "offloaded %d/%u layers", p.ngl, e.a.n_layer + 1);
	if (p.ngl > 0 && strstr(log, want) == NULL) {
		fprintf(stderr, "llama-server did not report '%s'\n", want);
		ok = 0;
	}
	free(log);
	free(logp);
	free(exe);
	plan_free(&p);
	est_free(&e);
	gguf_close(g);
	unlink(path);
	free(path);
	if (mm != NULL)
		unlink(mm);
	free(mm);
	return ok;
}

static void plans_match_llama_server(void **state)
{
	int bad = 0;
	const char *only = getenv("MLO_ACCURACY_ONLY"); /* a shape name: run its cases alone */
	for (size_t i = 0; i < ACC_N_CASES; i++) {
		const struct tcase *c = &acc_cases[i];
		/* MLO_ACCURACY_ONLY=vision: the cases with a projector */
		if (only != NULL && *only != '\0' && strcmp(only, c->shape) != 0 &&
		    !(c->mmproj != NULL && strcmp(only, "vision") == 0))
			continue;
		if (table != NULL && (i == 0 || acc_cases[i - 1].held_out != c->held_out))
			fprintf(table, "%s## %s\n\n"
			    "| model | plan | device | part | planned MiB | measured MiB | error |\n"
			    "|---|---|---|---|---:|---:|---:|\n", i ? "\n" : "",
			    c->held_out ? "Held-out set" : "Fitting set");
		bad += !run_case(c);
	}
	assert_int_equal(bad, 0);
}

static void tiny_model_answers(void **state)
{
	char *path = gen_model("tiny", NULL, 1);
	char port[16], *exe = xasprintf("%s/llama-server", bin_dir), *logp = tu_path("tiny.log");
	int portn = tu_free_port();
	snprintf(port, sizeof port, "%d", portn);
	char *argv[] = { exe, "-m", path, "--port", port, "--host", "127.0.0.1", "-c", "512",
	    "-t", "2", NULL };
	struct tu_proc srv;
	assert_int_equal(tu_spawn(&srv, argv, logp), 0);
	assert_int_equal(tu_wait_log(&srv, "listening on", 60), 1);
	char *r = tu_http(portn, "POST", "/v1/chat/completions",
	    "{\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}],\"max_tokens\":8}");
	tu_stop(&srv);
	assert_non_null(r);
	assert_non_null(strstr(r, " 200 "));
	assert_non_null(strstr(r, "\"choices\""));
	assert_non_null(strstr(r, "\"completion_tokens\":"));
	free(r);
	free(logp);
	free(exe);
	unlink(path);
	free(path);
}

/* An embedding model started with nothing but the plan's arguments answers the
 * OpenAI embeddings route with one vector of n_embd values. */
static void tiny_embed_answers(void **state)
{
	char *path = gen_model("tiny-embed", NULL, 1), err[4096];
	struct gguf *g = gguf_open(path, err, sizeof err);
	assert_non_null(g);
	struct est_opts eo;
	est_defaults(&eo);
	eo.n_ctx = 512;
	struct est e;
	assert_int_equal(est_build(g, &eo, &e, err, sizeof err), 0);
	struct plan_opts po = { .ngl = -1 };
	struct plan p;
	assert_int_equal(plan_make(&e, NULL, &po, &p, err, sizeof err), 0);
	char port[16], *exe = xasprintf("%s/llama-server", bin_dir), *logp = tu_path("embed.log");
	int portn = tu_free_port();
	snprintf(port, sizeof port, "%d", portn);
	char *argv[64] = { exe, "-m", path, "--port", port, "--host", "127.0.0.1", "-t", "2" };
	size_t n = 9;
	for (size_t i = 0; i < p.n_args && n < 63; i++)
		argv[n++] = p.args[i];
	argv[n] = NULL;
	struct tu_proc srv;
	assert_int_equal(tu_spawn(&srv, argv, logp), 0);
	assert_int_equal(tu_wait_log(&srv, "listening on", 60), 1);
	char *r = tu_http(portn, "POST", "/v1/embeddings", "{\"input\":\"hello\",\"model\":\"x\"}");
	tu_stop(&srv);
	assert_non_null(r);
	assert_non_null(strstr(r, " 200 "));
	const char *v = strstr(r, "\"embedding\":[");
	assert_non_null(v);
	size_t commas = 0;
	for (; *v != ']' && *v != '\0'; v++)
		commas += *v == ',';
	assert_int_equal(commas + 1, e.a.n_embd);
	free(r);
	plan_free(&p);
	est_free(&e);
	gguf_close(g);
	free(logp);
	free(exe);
	unlink(path);
	free(path);
}

static void split_model_loads(void **state)
{
	char *path = gen_model("small-llama", NULL, 3);
	char err[4096];
	struct gguf *g = gguf_open(path, err, sizeof err);
	assert_non_null(g);
	assert_int_equal(g->n_parts, 3);
	char port[16], *exe = xasprintf("%s/llama-server", bin_dir), *logp = tu_path("split.log");
	snprintf(port, sizeof port, "%d", tu_free_port());
	char *argv[] = { exe, "-m", path, "--port", port, "--host", "127.0.0.1", "-c", "512",
	    "--no-warmup", "-t", "2", "-lv", "4", NULL };
	struct tu_proc srv;
	assert_int_equal(tu_spawn(&srv, argv, logp), 0);
	int ready = tu_wait_log(&srv, "listening on", 60);
	size_t len;
	char *log = (char *)tu_read_file(logp, &len);
	tu_stop(&srv);
	assert_int_equal(ready, 1);
	log = xrealloc(log, len + 1);
	log[len] = 0;
	char want[64];
	snprintf(want, sizeof want, "and %llu tensors", (unsigned long long)g->n_tensors);
	assert_non_null(strstr(log, want));
	assert_non_null(strstr(log, "additional 2 GGUFs"));
	free(log);
	gguf_close(g);
	free(logp);
	free(exe);
	free(path);
}

/* A plan over two RPC servers on loopback (budgets b0, b1 MiB), loaded in llama-server:
 * each device's model and KV within 1% (or 1 MiB), compute within 20% (or 1 MiB), and
 * what llama.cpp allocated there within its budget. want_moe: experts on the CPU. */
static int run_multi_case(const char *shape, uint32_t ctx, double b0, double b1, int want_moe)
{
	char *path = gen_model(shape, NULL, 1), err[4096];
	struct gguf *g = gguf_open(path, err, sizeof err);
	assert_non_null(g);
	struct est_opts eo;
	est_defaults(&eo);
	eo.n_ctx = ctx;
	struct est e;
	assert_int_equal(est_build(g, &eo, &e, err, sizeof err), 0);
	struct plan_device d[2];
	memset(d, 0, sizeof d);
	int ports[2] = { rpc_port, rpc2_port };
	double bud[2] = { b0, b1 };
	for (int i = 0; i < 2; i++) {
		snprintf(d[i].name, sizeof d[i].name, "RPC%d", i);
		snprintf(d[i].rpc, sizeof d[i].rpc, "127.0.0.1:%d", ports[i]);
		d[i].budget = (uint64_t)(bud[i] * MiB);
	}
	struct plan_opts po = { .ngl = -1 };
	struct plan_multi p;
	assert_int_equal(plan_multi_make(&e, d, 2, &po, PLAN_SPLIT_AUTO, &p, err, sizeof err), 0);
	assert_true(p.fits);
	assert_int_equal(p.n_dev, 2);
	assert_int_equal(p.n_cpu_moe > 0, want_moe);
	char port[16], *exe = xasprintf("%s/llama-server", bin_dir), *logp = tu_path("multi.log");
	snprintf(port, sizeof port, "%d", tu_free_port());
	char *argv[64] = { exe, "-m", path, "--port", port, "--host", "127.0.0.1", "-lv", "4",
	    "--no-warmup", "-t", "2" };
	size_t n = 12;
	for (size_t i = 0; i < p.n_args && n < 63; i++)
		argv[n++] = p.args[i];
	argv[n] = NULL;
	struct tu_proc srv;
	assert_int_equal(tu_spawn(&srv, argv, logp), 0);
	int ready = tu_wait_log(&srv, "listening on", 300);
	size_t len;
	char *log = (char *)tu_read_file(logp, &len);
	log = xrealloc(log, len + 1);
	log[len] = 0;
	tu_stop(&srv);
	if (ready != 1)
		fail_msg("llama-server did not start for %s:\n%s", shape, log + (len > 3000 ?
		    len - 3000 : 0));
	char label[256] = "";
	for (size_t i = 0; i < p.n_args; i++) {
		size_t l = strlen(label);
		snprintf(label + l, sizeof label - l, "%s%s", l ? " " : "", p.args[i]);
	}
	int ok = 1;
	for (int i = 0; i < p.n_dev; i++) {
		const struct plan_dev_use *u = &p.dev[i];
		/* a buffer is named by the server's own device index and its endpoint
		 * (ggml-rpc.cpp): RPC0[host:port] on every one-device server */
		char dev[160];
		snprintf(dev, sizeof dev, "RPC0[%s]", u->rpc);
		double m_model = measured(log, dev, "model");
		double m_kv = measured(log, dev, "KV");
		double m_comp = measured(log, dev, "compute");
		fprintf(stderr, "split %s [%s] %s: model %.2f/%.2f KV %.2f/%.2f compute %.2f/%.2f "
		    "MiB planned/measured, budget %.2f\n", shape, label, u->name, u->use.model / MiB,
		    m_model, u->use.kv / MiB, m_kv, u->use.compute / MiB, m_comp, u->budget / MiB);
		ok &= check(shape, label, u->name, "model", u->use.model / MiB, m_model, 0.01, 1);
		ok &= check(shape, label, u->name, "KV", u->use.kv / MiB, m_kv, 0.01, 1);
		ok &= check(shape, label, u->name, "compute", u->use.compute / MiB, m_comp, 0.20, 1);
		if ((m_model + m_kv + m_comp) * MiB > (double)u->budget) {
			fprintf(stderr, "OVER BUDGET %s on %s: %.2f MiB of %.2f\n", shape, u->name,
			    m_model + m_kv + m_comp, u->budget / MiB);
			ok = 0;
		}
	}
	char want[64];
	snprintf(want, sizeof want, "offloaded %d/%u layers", p.ngl, e.a.n_layer + 1);
	if (strstr(log, want) == NULL) {
		fprintf(stderr, "llama-server did not report '%s'\n", want);
		ok = 0;
	}
	free(log);
	free(logp);
	free(exe);
	plan_multi_free(&p);
	est_free(&e);
	gguf_close(g);
	unlink(path);
	free(path);
	return ok;
}

/* Plans split over two devices (ggml-rpc-servers), uneven budgets (2:1), dense and
 * MoE, one that also keeps experts on the CPU: llama.cpp allocates what was planned. */
static void split_plans_match_llama_server(void **state)
{
	const char *only = getenv("MLO_ACCURACY_ONLY");
	int all = only == NULL || *only == '\0' || strcmp(only, "split") == 0;
	int bad = 0;
	/* no rows in docs/accuracy.md: their --rpc ports change every run, so the staleness
	 * check (test_estimate) could not match them; docs/estimator.md shows splits */
	FILE *saved = table;
	table = NULL;
	/* every layer split: pipeline parallelism (4 copies of each device's inputs) */
	if (all || strcmp(only, "small-llama") == 0) {
		bad += !run_multi_case("small-llama", 1024, 18, 9, 0);
		bad += !run_multi_case("small-llama", 4096, 24, 12, 0); /* a layer on the CPU */
	}
	if (all || strcmp(only, "small-moe") == 0) {
		bad += !run_multi_case("small-moe", 1024, 50, 25, 0);
		bad += !run_multi_case("small-moe", 4096, 54, 27, 1);
	}
	table = saved;
	assert_int_equal(bad, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(tiny_model_answers),
		cmocka_unit_test(tiny_embed_answers),
		cmocka_unit_test(split_model_loads),
		cmocka_unit_test(split_plans_match_llama_server),
		cmocka_unit_test(plans_match_llama_server),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
