/*
 * test_scan: the folder scan over a tree of generated models and hostile files: a
 * model with its projector (by name and by architecture), a 3-part split model, a
 * truncated and a text file named .gguf, a FIFO, links out of the folders (file and
 * folder), a link loop, a projector alone, a split part without its part one, a
 * missing folder; then the same tree again with what is known, and with a file touched.
 */
#include "testutil.h"

#include "estimate.h"
#include "gguf.h"
#include "ggufw.h"
#include "plan.h"
#include "scan.h"
#include "shapes.h"
#include "util.h"

#include <sys/stat.h>
#include <sys/types.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MiB (1024ull * 1024)
#define GiB (1024ull * MiB)

static char *root;     /* resolved tmpdir/models */
static char *outside;  /* resolved tmpdir/outside */

static char *at(const char *rel)
{
	return xasprintf("%s/%s", root, rel);
}

static void mkdirs(const char *rel)
{
	char *p = at(rel);
	assert_int_equal(tu_sh("mkdir -p '%s'", p), 0);
	free(p);
}

static void gen_model(const char *path, int split)
{
	char err[4096];
	const struct shape *s = shapes_find("small-llama");
	char *vocab = shapes_vocab_path(s->vocab);
	struct shapes_opts o = { NULL, vocab, 0, 1, split };
	if (shapes_write(s, &o, path, err, sizeof err) < 0)
		fail_msg("%s", err);
	free(vocab);
}

static void gen_clip(const char *path)
{
	char err[256];
	struct ggufw *w = ggufw_new();
	int64_t ne[2] = { 256, 64 };
	ggufw_str(w, "general.architecture", "clip");
	ggufw_str(w, "general.name", "a projector");
	assert_int_equal(ggufw_tensor(w, "v.patch_embd.weight", 1, 2, ne), 0);
	assert_int_equal(ggufw_tensor(w, "mm.0.weight", 0, 2, ne), 0);
	if (ggufw_write(w, path, GGUFW_HOLE, 1, err, sizeof err) < 0)
		fail_msg("%s", err);
	ggufw_free(w);
}

static void truncate_copy(const char *from, const char *to, size_t n)
{
	size_t len;
	uint8_t *b = tu_read_file(from, &len);
	assert_non_null(b);
	assert_true(len > n);
	assert_int_equal(tu_write_file(to, b, n), 0);
	free(b);
}

static int setup(void **state)
{
	char rp[4096];
	char *m = tu_path("models"), *o = tu_path("outside");
	assert_int_equal(tu_sh("mkdir -p '%s' '%s'", m, o), 0);
	assert_non_null(realpath(m, rp));
	root = xstrdup(rp);
	assert_non_null(realpath(o, rp));
	outside = xstrdup(rp);
	free(m);
	free(o);

	mkdirs("split");
	mkdirs("bad");
	mkdirs("lonely");
	mkdirs("orphan");
	mkdirs("deep/a/b");
	char *p = at("small-llama-Q4_K_M.gguf");
	gen_model(p, 1);
	char *q = at("mmproj-small-llama-f16.gguf");
	gen_clip(q);
	free(q);
	/* a second name for the model, inside: one item */
	assert_int_equal(tu_sh("ln -s small-llama-Q4_K_M.gguf '%s/alias.gguf'", root), 0);
	q = at("split/big-00001-of-00003.gguf");
	gen_model(q, 3);
	free(q);
	q = at("split/encoder.gguf"); /* a projector by its architecture */
	gen_clip(q);
	free(q);
	q = at("bad/truncated.gguf");
	truncate_copy(p, q, 3000);
	free(q);
	q = at("bad/text.gguf");
	assert_int_equal(tu_write_file(q, "not a model at all\n", 19), 0);
	free(q);
	q = at("bad/fifo.gguf");
	assert_int_equal(mkfifo(q, 0600), 0);
	free(q);
	q = at("notes.txt");
	assert_int_equal(tu_write_file(q, "hello", 5), 0);
	free(q);
	q = at("lonely/vision.gguf");
	gen_clip(q);
	free(q);
	/* a part 2 whose part 1 is not there */
	assert_int_equal(tu_sh("cp '%s/split/big-00002-of-00003.gguf' "
	    "'%s/orphan/lost-00002-of-00002.gguf'", root, root), 0);
	q = at("deep/a/b/nested.gguf");
	gen_model(q, 1);
	free(q);
	/* out of the folders: a file link, a folder link; and a loop */
	char *x = xasprintf("%s/secret.gguf", outside);
	gen_clip(x);
	assert_int_equal(tu_sh("ln -s '%s' '%s/leak.gguf'", x, root), 0);
	assert_int_equal(tu_sh("ln -s '%s' '%s/outdir'", outside, root), 0);
	assert_int_equal(tu_sh("ln -s '%s' '%s/deep/a/loop'", root, root), 0);
	free(x);
	free(p);
	return 0;
}

static int teardown(void **state)
{
	free(root);
	free(outside);
	return 0;
}

static const struct scan_item *find(const struct scan_result *r, const char *rel)
{
	char *p = at(rel);
	const struct scan_item *it = NULL;
	for (size_t i = 0; i < r->n_items; i++)
		if (strcmp(r->items[i].path, p) == 0)
			it = &r->items[i];
	free(p);
	return it;
}

static const struct scan_device devs[] = {
	{ "gpu0", "Big GPU", 64 * MiB, 0 },
	{ "gpu1", "Tiny GPU", 4 * MiB, 0 },
	{ "gpu2", "Middle GPU", 32 * MiB, 0 },
	{ "cpu", "System RAM", 1 * GiB, 1 },
	{ "cpu-small", "Small RAM", 1 * MiB, 1 },
};

static struct scan_result *scan(char **dirs, size_t n, const struct scan_known *k,
    size_t nk)
{
	struct scan_opts o;
	memset(&o, 0, sizeof o);
	o.dirs = dirs;
	o.n_dirs = n;
	o.known = k;
	o.n_known = nk;
	o.devs = devs;
	o.n_devs = sizeof devs / sizeof devs[0];
	return scan_run(&o);
}

static const json_t *fit_of(const json_t *info, const char *dev)
{
	size_t i;
	const json_t *f;
	json_array_foreach(json_object_get(info, "fit"), i, f)
		if (strcmp(json_string_value(json_object_get(f, "device")), dev) == 0)
			return f;
	fail_msg("no fit for %s", dev);
	return NULL;
}

static const char *jstr(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static json_int_t jint(const json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

static void whole_tree(void **state)
{
	char *missing = tu_path("no-such-folder");
	char *dirs[] = { root, missing };
	struct scan_result *r = scan(dirs, 2, NULL, 0);
	for (size_t i = 0; i < r->n_items; i++)
		print_message("item %s: %s\n", r->items[i].path,
		    r->items[i].error ? r->items[i].error : "ok");
	assert_int_equal(r->n_dirs_missing, 1);
	assert_non_null(r->dir_error);
	assert_non_null(strstr(r->dir_error, "no-such-folder"));
	assert_int_equal(r->n_dirs, 1);
	assert_string_equal(r->dirs[0], root);
	assert_int_equal(r->truncated, 0);
	/* the model, the split, the nested one; truncated, text, fifo, orphan, leak */
	assert_int_equal(r->n_items, 8);
	for (size_t i = 1; i < r->n_items; i++)
		assert_true(strcmp(r->items[i - 1].path, r->items[i].path) < 0);

	const struct scan_item *m = find(r, "small-llama-Q4_K_M.gguf");
	assert_non_null(m);
	assert_null(m->error);
	assert_false(m->unchanged);
	json_t *in = m->info;
	assert_non_null(in);
	assert_string_equal(jstr(in, "arch"), "llama");
	assert_string_equal(jstr(in, "quantization"), "Q4_K_M");
	assert_int_equal(jint(in, "layers"), 8);
	assert_int_equal(jint(in, "context_length"), 8192);
	assert_int_equal(jint(in, "parts"), 1);
	assert_int_equal(jint(in, "file_bytes"), (json_int_t)m->size);
	assert_true(jint(in, "parameters") > 0);
	assert_non_null(jstr(in, "parameters_label"));
	assert_non_null(jstr(in, "name"));
	char *mm = at("mmproj-small-llama-f16.gguf");
	assert_string_equal(jstr(in, "mmproj"), mm);
	free(mm);
	const json_t *e = json_object_get(in, "estimate");
	assert_int_equal(jint(e, "ctx"), 8192);
	assert_true(jint(e, "kv_bytes") > 0);
	/* 8 layers x 8192 cells x 64 wide x K and V x 2 bytes */
	assert_int_equal(jint(e, "kv_bytes"), 8 * 8192 * 64 * 2 * 2);
	assert_true(jint(e, "layer_bytes") > 0);
	assert_int_equal(jint(e, "expert_bytes"), 0);
	assert_true(jint(e, "mmproj_bytes") > 0);
	assert_true(jint(e, "total_bytes") > jint(e, "kv_bytes") + jint(e, "layer_bytes"));

	/* fit: the big device holds all of it; the tiny one as the planner says */
	const json_t *f = fit_of(in, "gpu0");
	assert_string_equal(jstr(f, "mode"), "gpu");
	assert_true(json_is_true(json_object_get(f, "fits")));
	assert_int_equal(jint(f, "gpu_layers"), 9);
	assert_int_equal(jint(f, "layers"), 9);
	assert_int_equal(jint(f, "budget_bytes"), 64 * MiB);
	assert_true(jint(f, "total_bytes") <= (json_int_t)(64 * MiB));
	assert_string_equal(jstr(f, "name"), "Big GPU");
	f = fit_of(in, "gpu1");
	{
		char err[4096];
		struct gguf *g = gguf_open(m->path, err, sizeof err);
		assert_non_null(g);
		struct est_opts eo;
		struct est es;
		est_defaults(&eo);
		eo.n_ctx = 8192;
		eo.mmproj_bytes = (uint64_t)jint(e, "mmproj_bytes");
		assert_int_equal(est_build(g, &eo, &es, err, sizeof err), 0);
		struct plan_opts po = { .ngl = -1, .mmproj = jstr(in, "mmproj") };
		struct plan_device d = { "gpu1", 4 * MiB, "" };
		struct plan p;
		assert_int_equal(plan_make(&es, &d, &po, &p, err, sizeof err), 0);
		const char *want = p.fits && p.ngl > 0 ? "offload" : "none";
		assert_string_equal(jstr(f, "mode"), want);
		assert_int_equal(jint(f, "gpu_layers"), p.fits ? p.ngl : 0);
		assert_true(jint(f, "gpu_layers") < 9);
		plan_free(&p);
		est_free(&es);
		gguf_close(g);
	}
	/* 32 MiB: the output layer, the compute buffers and some of the layers */
	f = fit_of(in, "gpu2");
	assert_string_equal(jstr(f, "mode"), "offload");
	assert_true(json_is_true(json_object_get(f, "fits")));
	assert_true(jint(f, "gpu_layers") > 0 && jint(f, "gpu_layers") < 9);
	assert_true(jint(f, "total_bytes") <= (json_int_t)(32 * MiB));
	assert_string_equal(jstr(fit_of(in, "cpu"), "mode"), "cpu");
	assert_string_equal(jstr(fit_of(in, "cpu-small"), "mode"), "none");
	assert_false(json_is_true(json_object_get(fit_of(in, "cpu-small"), "fits")));

	/* the split model: one item, its parts summed, the projector found by its arch */
	m = find(r, "split/big-00001-of-00003.gguf");
	assert_non_null(m);
	assert_null(m->error);
	assert_int_equal(jint(m->info, "parts"), 3);
	assert_string_equal(jstr(m->info, "name"), "small-llama"); /* general.name */
	uint64_t sum = 0;
	for (int k = 1; k <= 3; k++) {
		char rel[64];
		struct stat st;
		snprintf(rel, sizeof rel, "split/big-%05d-of-00003.gguf", k);
		char *pp = at(rel);
		assert_int_equal(stat(pp, &st), 0);
		sum += (uint64_t)st.st_size;
		free(pp);
		if (k > 1)
			assert_null(find(r, rel));
	}
	assert_int_equal(m->size, sum);
	mm = at("split/encoder.gguf");
	assert_string_equal(jstr(m->info, "mmproj"), mm);
	free(mm);
	assert_null(find(r, "split/encoder.gguf"));

	m = find(r, "deep/a/b/nested.gguf");
	assert_non_null(m);
	assert_null(m->error);
	assert_true(json_is_null(json_object_get(m->info, "mmproj")));

	m = find(r, "bad/truncated.gguf");
	assert_non_null(m);
	assert_non_null(m->error);
	assert_non_null(strstr(m->error, "at byte"));
	assert_null(m->info);
	m = find(r, "bad/text.gguf");
	assert_non_null(m);
	assert_non_null(m->error);
	m = find(r, "bad/fifo.gguf");
	assert_non_null(m);
	assert_non_null(strstr(m->error, "not a regular file"));
	m = find(r, "orphan/lost-00002-of-00002.gguf");
	assert_non_null(m);
	assert_non_null(strstr(m->error, "part 1"));
	m = find(r, "leak.gguf");
	assert_non_null(m);
	assert_non_null(strstr(m->error, "outside"));

	/* not models, or not items: */
	assert_null(find(r, "notes.txt"));
	assert_null(find(r, "alias.gguf"));
	assert_null(find(r, "mmproj-small-llama-f16.gguf"));
	assert_null(find(r, "lonely/vision.gguf"));
	assert_null(find(r, "outdir/secret.gguf"));
	for (size_t i = 0; i < r->n_items; i++) {
		assert_null(strstr(r->items[i].path, "/loop/"));
		assert_null(strstr(r->items[i].path, outside));
	}
	free(missing);
	scan_free(r);
}

static struct scan_known *known_of(const struct scan_result *r, size_t *n)
{
	struct scan_known *k = xcalloc(r->n_items, sizeof *k);
	for (size_t i = 0; i < r->n_items; i++) {
		k[i].path = r->items[i].path;
		k[i].size = r->items[i].size;
		k[i].mtime_ns = r->items[i].mtime_ns;
		k[i].mmproj = r->items[i].info ? jstr(r->items[i].info, "mmproj") : NULL;
	}
	*n = r->n_items;
	return k;
}

static void unchanged_and_touched(void **state)
{
	char *dirs[] = { root };
	struct scan_result *r1 = scan(dirs, 1, NULL, 0);
	size_t nk;
	struct scan_known *k = known_of(r1, &nk);
	struct scan_result *r2 = scan(dirs, 1, k, nk);
	assert_int_equal(r2->n_items, r1->n_items);
	for (size_t i = 0; i < r2->n_items; i++) {
		const struct scan_item *it = &r2->items[i];
		if (strstr(it->path, "leak.gguf") || strstr(it->path, "fifo.gguf") ||
		    strstr(it->path, "orphan/")) {
			/* refused before any reading: never taken as unchanged */
			assert_false(it->unchanged);
			assert_non_null(it->error);
			continue;
		}
		assert_true(it->unchanged);
		assert_null(it->info);
		assert_null(it->error);
	}
	/* touch one model: described again */
	char *p = at("deep/a/b/nested.gguf");
	struct timespec ts[2] = { { 1000000000, 0 }, { 1000000000, 0 } };
	assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
	struct scan_result *r3 = scan(dirs, 1, k, nk);
	const struct scan_item *it = find(r3, "deep/a/b/nested.gguf");
	assert_non_null(it);
	assert_false(it->unchanged);
	assert_non_null(it->info);
	assert_int_equal(it->mtime_ns, 1000000000ll * 1000000000ll);
	assert_true(find(r3, "small-llama-Q4_K_M.gguf")->unchanged);
	/* a projector that is not the known one: described again */
	for (size_t i = 0; i < nk; i++)
		if (strstr(k[i].path, "small-llama-Q4_K_M.gguf"))
			k[i].mmproj = "/elsewhere/mmproj.gguf";
	struct scan_result *r4 = scan(dirs, 1, k, nk);
	it = find(r4, "small-llama-Q4_K_M.gguf");
	assert_false(it->unchanged);
	assert_non_null(it->info);
	free(p);
	free(k);
	scan_free(r1);
	scan_free(r2);
	scan_free(r3);
	scan_free(r4);
}

static void limits_and_paths(void **state)
{
	char *dirs[] = { root };
	struct scan_opts o;
	memset(&o, 0, sizeof o);
	o.dirs = dirs;
	o.n_dirs = 1;
	o.max_files = 2;
	struct scan_result *r = scan_run(&o);
	assert_true(r->truncated);
	assert_true(r->n_items <= 2);
	scan_free(r);

	/* a folder given through a link, and twice: walked once */
	char *ln = tu_path("models-link");
	assert_int_equal(tu_sh("ln -s '%s' '%s'", root, ln), 0);
	char *dirs2[] = { ln, root };
	r = scan(dirs2, 2, NULL, 0);
	assert_int_equal(r->n_items, 8);
	assert_int_equal(r->n_dirs, 1);
	scan_free(r);
	free(ln);

	/* nothing to scan at all */
	char *none[] = { "/nonexistent-mlo-dir" };
	r = scan(none, 1, NULL, 0);
	assert_int_equal(r->n_items, 0);
	assert_int_equal(r->n_dirs_missing, 1);
	assert_int_equal(r->n_dirs, 0);
	scan_free(r);
	/* a file given as a folder */
	char *f = at("notes.txt");
	char *fd[] = { f };
	r = scan(fd, 1, NULL, 0);
	assert_int_equal(r->n_dirs_missing, 1);
	assert_non_null(strstr(r->dir_error, "not a folder"));
	scan_free(r);
	free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(whole_tree),
		cmocka_unit_test(unchanged_and_touched),
		cmocka_unit_test(limits_and_paths),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
