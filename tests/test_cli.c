/*
 * test_cli: the mloffload command as a user runs it: the exit status, the table, the
 * --json document a script reads, and a one-line error for a broken file or bad flag.
 */
#include "testutil.h"

#include "shapes.h"
#include "util.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char *exe;
static char *model;

/* Runs the command with args; returns its exit status, output (stdout then stderr) in *out. */
static int run(char **out, const char *args)
{
	char *errp = tu_path("stderr.txt");
	char *cmd = xasprintf("%s %s 2>%s", exe, args, errp);
	FILE *f = popen(cmd, "r");
	assert_non_null(f);
	size_t cap = 1 << 16, len = 0;
	char *b = xmalloc(cap);
	size_t r;
	while ((r = fread(b + len, 1, cap - len - 1, f)) > 0)
		if ((len += r) + 1 >= cap)
			b = xrealloc(b, cap *= 2);
	int st = pclose(f);
	size_t elen = 0;
	uint8_t *e = tu_read_file(errp, &elen);
	b = xrealloc(b, len + elen + 1);
	if (e != NULL)
		memcpy(b + len, e, elen);
	b[len + elen] = 0;
	free(e);
	free(errp);
	free(cmd);
	*out = b;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int setup(void **state)
{
	const char *bd = getenv("MLO_BUILD_DIR");
	exe = xasprintf("%s/mloffload", bd ? bd : ".");
	model = tu_path("m.gguf");
	char *out;
	char *args = xasprintf("gen small-llama %s", model);
	int rc = run(&out, args);
	free(args);
	free(out);
	return rc == 0 ? 0 : -1;
}

static int teardown(void **state)
{
	free(exe);
	free(model);
	return 0;
}

static void inspect_prints_the_model(void **state)
{
	char *out, *args = xasprintf("inspect %s", model);
	assert_int_equal(run(&out, args), 0);
	assert_non_null(strstr(out, "architecture   llama"));
	assert_non_null(strstr(out, "layers         8"));
	assert_non_null(strstr(out, "Q4_K_M"));
	free(out);
	free(args);
	args = xasprintf("inspect %s --json", model);
	assert_int_equal(run(&out, args), 0);
	json_error_t je;
	json_t *j = json_loads(out, 0, &je);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "architecture")), "llama");
	assert_int_equal(json_integer_value(json_object_get(j, "layers")), 8);
	assert_true(json_array_size(json_object_get(j, "tensor_types")) >= 2);
	json_decref(j);
	free(out);
	free(args);
}

static void plan_json_for_scripts(void **state)
{
	char *out, *args = xasprintf("plan %s --vram 20M --ctx 4096 --json", model);
	assert_int_equal(run(&out, args), 0);
	json_error_t je;
	json_t *j = json_loads(out, 0, &je);
	assert_non_null(j);
	assert_true(json_is_true(json_object_get(j, "fits")));
	int ngl = (int)json_integer_value(json_object_get(j, "gpu_layers"));
	assert_true(ngl > 0 && ngl < 9);
	json_t *dev = json_array_get(json_object_get(j, "devices"), 0);
	assert_true(json_integer_value(json_object_get(dev, "total_bytes")) <= 20 * 1024 * 1024);
	assert_int_equal(json_integer_value(json_object_get(dev, "total_bytes")),
	    json_integer_value(json_object_get(dev, "model_bytes")) +
	    json_integer_value(json_object_get(dev, "kv_bytes")) +
	    json_integer_value(json_object_get(dev, "compute_bytes")));
	json_t *a = json_object_get(j, "args");
	int seen = 0;
	for (size_t i = 0; i + 1 < json_array_size(a); i++)
		if (strcmp(json_string_value(json_array_get(a, i)), "-ngl") == 0)
			seen = strtol(json_string_value(json_array_get(a, i + 1)), NULL, 10) == ngl;
	assert_true(seen);
	json_decref(j);
	free(out);
	free(args);
}

/* plan --mmproj: the encoder of a generated projector (small-mmproj: 55.78 MiB of
 * weights, 5.25 MiB of compute) on the GPU when there is room, else on the CPU with
 * every layer kept and the saving said, in text and in JSON; a file that is not a
 * projector is one clear line. */
static void plan_places_the_encoder(void **state)
{
	char *mm = tu_path("mmproj-m.gguf"), *out;
	char *args = xasprintf("gen small-mmproj %s", mm);
	assert_int_equal(run(&out, args), 0);
	free(out);
	free(args);
	args = xasprintf("plan %s --mmproj %s --vram 1G --ctx 4096", model, mm);
	assert_int_equal(run(&out, args), 0);
	assert_non_null(strstr(out, "encoder: gemma3 vision, weights 55.78 MiB + compute 5.25 MiB "
	    "(warmup 224 px) on GPU0\n"));
	assert_null(strstr(out, "--no-mmproj-offload"));
	free(out);
	free(args);
	args = xasprintf("plan %s --mmproj %s --vram 50M --ctx 4096", model, mm);
	assert_int_equal(run(&out, args), 0);
	assert_non_null(strstr(out, "9 of 9 layers on GPU0"));
	assert_non_null(strstr(out, "(--no-mmproj-offload saves 61.03 MiB on GPU0)"));
	assert_non_null(strstr(out, " --no-mmproj-offload --fit off\n"));
	free(out);
	free(args);
	args = xasprintf("plan %s --mmproj %s --vram 50M --ctx 4096 --json", model, mm);
	assert_int_equal(run(&out, args), 0);
	json_error_t je;
	json_t *j = json_loads(out, 0, &je);
	assert_non_null(j);
	json_t *e = json_object_get(j, "mmproj");
	assert_string_equal(json_string_value(json_object_get(e, "device")), "CPU");
	assert_string_equal(json_string_value(json_object_get(e, "estimate")), "checked");
	json_int_t w = json_integer_value(json_object_get(e, "weights_bytes"));
	json_int_t c = json_integer_value(json_object_get(e, "compute_bytes"));
	assert_int_equal(c, 4 * (3 * 256 * 768 + 256 * 3072));
	assert_int_equal(json_integer_value(json_object_get(e, "device_saving_bytes")), w + c);
	assert_int_equal(json_integer_value(json_object_get(j, "gpu_layers")), 9);
	json_decref(j);
	free(out);
	free(args);
	args = xasprintf("plan %s --mmproj %s --vram 1G", model, model);
	assert_int_equal(run(&out, args), 1);
	assert_non_null(strstr(out, "not a multimodal projector"));
	free(out);
	free(args);
	unlink(mm);
	free(mm);
}

/* The memory map: a bar per device, 50 cells, the GPU's filled to its share of the
 * budget; without a terminal, letters and no colour codes. */
static void plan_draws_a_memory_map(void **state)
{
	char *out, *args = xasprintf("plan %s --vram 40M --ctx 4096", model);
	assert_int_equal(run(&out, args), 0);
	assert_non_null(strstr(out, "memory map: # weights  k KV cache  c compute"));
	const char *g = strstr(out, "\nGPU0       [");
	const char *c = strstr(out, "\nCPU        [");
	assert_non_null(g);
	assert_non_null(c);
	g += strlen("\nGPU0       [");
	assert_int_equal(g[50], ']');
	assert_int_equal(g[0], '#');
	assert_non_null(memchr(g, 'k', 50));
	assert_non_null(memchr(g, '.', 50));   /* free room left in 40M */
	assert_non_null(strstr(g, "of 40.00 MiB"));
	assert_null(strchr(out, '\033'));
	free(out);
	free(args);
}

static void plan_that_does_not_fit(void **state)
{
	char *out, *args = xasprintf("plan %s --vram 1M --offload gpu", model);
	assert_int_equal(run(&out, args), 3);
	assert_non_null(strstr(out, "does not fit"));
	assert_non_null(strstr(out, "needs"));
	free(out);
	free(args);
}

static void bad_input_is_one_clear_line(void **state)
{
	char *out;
	size_t len;
	uint8_t *b = tu_read_file(model, &len);
	assert_non_null(b);
	char *cut = tu_path("cut.gguf");
	assert_int_equal(tu_write_file(cut, b, 1000), 0);
	free(b);
	char *args = xasprintf("inspect %s", cut);
	assert_int_equal(run(&out, args), 1);
	assert_non_null(strstr(out, "at byte"));
	assert_non_null(strstr(out, "cut.gguf"));
	free(out);
	free(args);
	args = xasprintf("inspect %s/does-not-exist.gguf", tu_tmpdir());
	assert_int_equal(run(&out, args), 1);
	assert_non_null(strstr(out, "No such file"));
	free(out);
	free(args);
	args = xasprintf("plan %s --vram lots", model);
	assert_int_equal(run(&out, args), 2);
	assert_non_null(strstr(out, "not a size"));
	free(out);
	free(args);
	assert_int_equal(run(&out, "frobnicate"), 2);
	assert_non_null(strstr(out, "unknown command"));
	free(out);
	assert_int_equal(run(&out, "gen no-such-shape x.gguf"), 2);
	assert_non_null(strstr(out, "unknown shape"));
	free(out);
	free(cut);
}

/* gen --list names tiny-embed; inspect says an embedding model is one. */
static void embedding_model_inspected(void **state)
{
	char *out;
	assert_int_equal(run(&out, "gen --list"), 0);
	assert_non_null(strstr(out, "tiny-embed"));
	free(out);
	char *path = tu_path("te.gguf"), *args = xasprintf("gen tiny-embed %s", path);
	assert_int_equal(run(&out, args), 0);
	free(out);
	free(args);
	args = xasprintf("inspect %s", path);
	assert_int_equal(run(&out, args), 0);
	assert_non_null(strstr(out, "pooling        mean"));
	free(out);
	free(args);
	args = xasprintf("inspect %s --json", path);
	assert_int_equal(run(&out, args), 0);
	json_error_t je;
	json_t *j = json_loads(out, 0, &je);
	assert_non_null(j);
	assert_true(json_is_true(json_object_get(j, "embedding")));
	assert_string_equal(json_string_value(json_object_get(j, "pooling")), "mean");
	json_decref(j);
	free(out);
	free(args);
	args = xasprintf("plan %s --vram 1G", path);
	assert_int_equal(run(&out, args), 0);
	assert_non_null(strstr(out, " --embeddings --pooling mean"));
	free(out);
	free(args);
	/* a generative model says neither */
	args = xasprintf("inspect %s --json", model);
	assert_int_equal(run(&out, args), 0);
	j = json_loads(out, 0, &je);
	assert_non_null(j);
	assert_true(json_is_false(json_object_get(j, "embedding")));
	assert_true(json_is_null(json_object_get(j, "pooling")));
	json_decref(j);
	free(out);
	free(args);
	unlink(path);
	free(path);
}

/* No --ctx: the default context, the training context capped at 8192 (model.h), the
 * same the daemon's loads, scans and /vram/budget use. */
static void plan_default_context(void **state)
{
	char *big = tu_path("llama3.2-1b.gguf"), *tiny = tu_path("tiny.gguf"), *out;
	char *args = xasprintf("gen llama3.2-1b %s --hole", big);
	assert_int_equal(run(&out, args), 0);
	free(out);
	free(args);
	args = xasprintf("gen tiny %s", tiny);
	assert_int_equal(run(&out, args), 0);
	free(out);
	free(args);
	const char *cases[][2] = { { big, "8192" }, { tiny, NULL } };
	for (size_t i = 0; i < 2; i++) {
		args = xasprintf("plan %s --vram 64G --json", cases[i][0]);
		assert_int_equal(run(&out, args), 0);
		json_error_t je;
		json_t *j = json_loads(out, 0, &je);
		assert_non_null(j);
		json_int_t ctx = json_integer_value(json_object_get(j, "ctx"));
		if (cases[i][1] != NULL) { /* Llama-3.2-1B trains at 131072 */
			assert_int_equal(ctx, strtol(cases[i][1], NULL, 10));
		} else { /* tiny trains below 8192: its own context */
			char *ins = xasprintf("inspect %s --json", tiny), *o2;
			assert_int_equal(run(&o2, ins), 0);
			json_t *k = json_loads(o2, 0, &je);
			assert_non_null(k);
			json_int_t train = json_integer_value(json_object_get(k, "context_length"));
			assert_true(train > 0 && train < 8192);
			assert_int_equal(ctx, (train + 255) / 256 * 256);
			json_decref(k);
			free(o2);
			free(ins);
		}
		json_decref(j);
		free(out);
		free(args);
	}
	unlink(big);
	unlink(tiny);
	free(big);
	free(tiny);
}

/* An architecture the estimator was never checked on still gets a plan, flagged as a
 * generic estimate in the table and in the JSON. */
static void unknown_architecture_flagged_generic(void **state)
{
	struct shape s = *shapes_find("small-llama");
	s.arch = "futurelm";
	char err[4096], *path = tu_path("future.gguf"), *vocab = shapes_vocab_path(s.vocab);
	struct shapes_opts so = { NULL, vocab, 0, 1, 1 };
	assert_int_equal(shapes_write(&s, &so, path, err, sizeof err), 0);
	char *out, *args = xasprintf("plan %s --vram 20M --ctx 4096", path);
	assert_int_equal(run(&out, args), 0);
	assert_non_null(strstr(out, "estimate: generic"));
	assert_non_null(strstr(out, "futurelm"));
	free(out);
	free(args);
	args = xasprintf("plan %s --vram 20M --ctx 4096 --json", path);
	assert_int_equal(run(&out, args), 0);
	json_error_t je;
	json_t *j = json_loads(out, 0, &je);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "estimate")), "generic");
	assert_true(json_is_true(json_object_get(j, "fits")));
	json_decref(j);
	free(out);
	free(args);
	args = xasprintf("plan %s --vram 20M --ctx 4096 --json", model);
	assert_int_equal(run(&out, args), 0);
	assert_non_null(strstr(out, "\"estimate\": \"checked\""));
	free(out);
	free(args);
	unlink(path);
	free(vocab);
	free(path);
}

/* The offline commands load no HTTP client: libcurl is in mloffload-client only, which
 * mloffload runs for the daemon commands. */
static void offline_binary_has_no_libcurl(void **state)
{
	char *cmd = xasprintf("ldd %s", exe), *out = NULL;
	FILE *f = popen(cmd, "r");
	assert_non_null(f);
	size_t cap = 1 << 16, len = 0, r;
	out = xmalloc(cap);
	while ((r = fread(out + len, 1, cap - len - 1, f)) > 0)
		len += r;
	out[len] = '\0';
	assert_int_equal(pclose(f), 0);
	assert_non_null(strstr(out, "libjansson"));   /* ldd did list its libraries */
	assert_null(strstr(out, "libcurl"));
	free(out);
	free(cmd);
	/* and a daemon command still answers, through mloffload-client */
	char *o2;
	assert_int_equal(run(&o2, "status --url http://127.0.0.1:1"), 1);
	assert_non_null(strstr(o2, "is mloffloadd running?"));
	free(o2);
}

/* Several devices: one budget each in llama.cpp's order (GPUs, then the --rpc servers);
 * --json names each as llama.cpp does and the host CPU; the arguments name exactly the
 * devices used and the split; the table and the map show every device. */
static void plan_over_several_devices(void **state)
{
	char *out, *args = xasprintf("plan %s --vram 18M,9M --ctx 1024 --rpc h:1,h:2 --json",
	    model);
	assert_int_equal(run(&out, args), 0);
	json_error_t je;
	json_t *j = json_loads(out, 0, &je);
	assert_non_null(j);
	assert_true(json_is_true(json_object_get(j, "fits")));
	assert_true(json_is_true(json_object_get(j, "split")));
	json_t *devs = json_object_get(j, "devices");
	assert_int_equal(json_array_size(devs), 3);
	const char *names[3] = { "RPC0", "RPC1", "CPU" };
	long long budgets[2] = { 18 << 20, 9 << 20 };
	for (size_t i = 0; i < 3; i++) {
		json_t *d = json_array_get(devs, i);
		assert_string_equal(json_string_value(json_object_get(d, "name")), names[i]);
		if (i < 2) {
			assert_true(json_is_true(json_object_get(d, "used")));
			assert_true(json_integer_value(json_object_get(d, "total_bytes")) <= budgets[i]);
		}
	}
	char want[4][32] = { "--rpc", "h:1,h:2", "--device", "RPC0,RPC1" };
	json_t *a = json_object_get(j, "args");
	int seen = 0;
	for (size_t i = 0; i + 1 < json_array_size(a); i++)
		for (int k = 0; k < 4; k += 2)
			seen += strcmp(json_string_value(json_array_get(a, i)), want[k]) == 0 &&
			    strcmp(json_string_value(json_array_get(a, i + 1)), want[k + 1]) == 0;
	assert_int_equal(seen, 2);
	json_decref(j);
	free(out);
	free(args);
	/* the model fits the larger GPU alone: that one only, named by --backend */
	args = xasprintf("plan %s --vram 8M,64M --ctx 1024 --backend ROCm", model);
	assert_int_equal(run(&out, args), 0);
	assert_non_null(strstr(out, "\nROCm0 "));
	assert_non_null(strstr(out, "\nROCm1 "));
	assert_non_null(strstr(out, "\nROCm0      ["));
	assert_non_null(strstr(out, "\nROCm1      ["));
	assert_non_null(strstr(out, " --device ROCm1 "));
	assert_null(strstr(out, "--tensor-split"));
	free(out);
	free(args);
	/* split never: one device, layers on the CPU */
	args = xasprintf("plan %s --vram 18M,9M --ctx 1024 --split never --json", model);
	assert_int_equal(run(&out, args), 0);
	assert_null(strstr(out, "--tensor-split"));
	assert_non_null(strstr(out, "\"CUDA0\""));
	free(out);
	free(args);
	args = xasprintf("plan %s --vram 1G,1G --rpc a:1,b:2,c:3", model);
	assert_int_equal(run(&out, args), 2);
	free(out);
	free(args);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(inspect_prints_the_model),
		cmocka_unit_test(plan_json_for_scripts),
		cmocka_unit_test(plan_draws_a_memory_map),
		cmocka_unit_test(plan_over_several_devices),
		cmocka_unit_test(plan_that_does_not_fit),
		cmocka_unit_test(bad_input_is_one_clear_line),
		cmocka_unit_test(embedding_model_inspected),
		cmocka_unit_test(plan_default_context),
		cmocka_unit_test(offline_binary_has_no_libcurl),
		cmocka_unit_test(unknown_architecture_flagged_generic),
		cmocka_unit_test(plan_places_the_encoder),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
