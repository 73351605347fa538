/*
 * test_vision: a multimodal model through the real mloffloadd and real llama-server.
 * A tiny generated model and its generated projector (gemma3 type, tiny-mmproj) sit in
 * the models folder under names the scan links; the fake NVML library is the GPU. A
 * chat request with an image (a PNG this test writes, as a data URL in an image_url
 * part) reaches the child untouched and is answered; the plan keeps the encoder on the
 * GPU when the model and the encoder fit, and moves it to the CPU
 * (--no-mmproj-offload) before any layer when only the model does.
 */
#include "daemonutil.h"

#include "model.h"
#include "plan.h"
#include "shapes.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *bin, *models, *state, *nvml, *llama_bin, *model_path, *proj_path;
static struct tu_proc dmn;
static int port;

/* ---- a PNG of 8x8 RGB pixels: zlib with one stored block, so no zlib is needed ---- */

static uint32_t crc32_of(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffffu;
	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
	}
	return c ^ 0xffffffffu;
}

static size_t be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
	return 4;
}

/* Appends chunk type t with data d[0..n) at out; returns its length. */
static size_t chunk(uint8_t *out, const char *t, const uint8_t *d, size_t n)
{
	size_t k = be32(out, (uint32_t)n);
	memcpy(out + k, t, 4);
	if (n > 0)
		memcpy(out + k + 4, d, n);
	k += 4 + n;
	return k + be32(out + k, crc32_of(out + 4, n + 4));
}

/* The PNG as "data:image/png;base64,..." (heap). */
static char *png_data_url(void)
{
	enum { W = 8, H = 8, ROW = 1 + 3 * W, RAW = H * ROW };
	uint8_t raw[RAW], z[RAW + 16], ihdr[13], png[512];
	for (int y = 0; y < H; y++) {
		raw[y * ROW] = 0; /* filter: none */
		for (int x = 0; x < W; x++) {
			uint8_t *px = raw + y * ROW + 1 + 3 * x;
			px[0] = (uint8_t)(x * 32);
			px[1] = (uint8_t)(y * 32);
			px[2] = 128;
		}
	}
	uint32_t a = 1, b = 0;
	for (size_t i = 0; i < RAW; i++) {
		a = (a + raw[i]) % 65521;
		b = (b + a) % 65521;
	}
	size_t zn = 0;
	z[zn++] = 0x78;
	z[zn++] = 0x01;
	z[zn++] = 0x01; /* final stored block */
	z[zn++] = RAW & 0xff;
	z[zn++] = RAW >> 8;
	z[zn++] = (uint8_t)~(RAW & 0xff);
	z[zn++] = (uint8_t)~(RAW >> 8);
	memcpy(z + zn, raw, RAW);
	zn += RAW;
	zn += be32(z + zn, (b << 16) | a);
	be32(ihdr, W);
	be32(ihdr + 4, H);
	memcpy(ihdr + 8, "\x08\x02\x00\x00\x00", 5); /* 8 bits, RGB */
	size_t n = 0;
	memcpy(png, "\x89PNG\r\n\x1a\n", 8);
	n = 8;
	n += chunk(png + n, "IHDR", ihdr, sizeof ihdr);
	n += chunk(png + n, "IDAT", z, zn);
	n += chunk(png + n, "IEND", NULL, 0);
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *s = xmalloc(32 + 4 * (n / 3 + 1));
	size_t j = (size_t)snprintf(s, 32, "data:image/png;base64,");
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)png[i] << 16 | (i + 1 < n ? png[i + 1] << 8 : 0) |
		    (i + 2 < n ? png[i + 2] : 0);
		s[j++] = b64[v >> 18 & 63];
		s[j++] = b64[v >> 12 & 63];
		s[j++] = i + 1 < n ? b64[v >> 6 & 63] : '=';
		s[j++] = i + 2 < n ? b64[v & 63] : '=';
	}
	s[j] = '\0';
	return s;
}

/* ---- the daemon ---- */

static int linked(json_t *j, void *arg)
{
	json_t *m = du_at(j, "models.0");
	return json_array_size(json_object_get(j, "models")) == 1 &&
	    json_is_string(json_object_get(m, "mmproj"));
}

/* What the plan puts on the device at ctx 512 with and without the encoder there. */
static void planned(uint64_t *with, uint64_t *without)
{
	struct est_opts eo;
	est_defaults(&eo);
	eo.n_ctx = 512;
	char err[4096];
	assert_int_equal(model_mmproj(proj_path, &eo, NULL, err, sizeof err), 0);
	struct gguf *g;
	struct est e;
	assert_int_equal(model_estimate(model_path, &eo, &g, &e, err, sizeof err), 0);
	struct plan_opts po = { .ngl = -1, .mmproj = proj_path };
	struct plan_device d = { "GPU0", 1ull << 40, "" };
	struct plan p;
	assert_int_equal(plan_make(&e, &d, &po, &p, err, sizeof err), 0);
	*with = p.dev.total;
	*without = p.dev.total - plan_mmproj_saving(&e);
	plan_free(&p);
	est_free(&e);
	gguf_close(g);
}

static int setup(void **st)
{
	const char *bd = getenv("MLO_BUILD_DIR");
	char *root = tu_llama_root();
	if (root == NULL)
		return -1;
	llama_bin = xasprintf("%s/build/bin/llama-server", root);
	free(root);
	bin = xasprintf("%s/mloffloadd", bd);
	models = tu_path("models");
	state = tu_path("state");
	nvml = tu_path("nvml.txt");
	mkdir(models, 0755);
	model_path = xasprintf("%s/vis.gguf", models);
	proj_path = xasprintf("%s/mmproj-vis.gguf", models);
	du_gen("tiny", model_path, NULL, 1, 5);
	char err[4096];
	if (shapes_mmproj_write(shapes_mmproj_find("tiny-mmproj"), 1, 6, proj_path, err,
	    sizeof err) < 0)
		return -1;
	du_fake_gpu(nvml, 1ull << 30, 0);
	char *log = tu_path("daemon.log");
	char *argv[] = { bin, "--listen", "127.0.0.1:0", "--models-dir", models, "--state-dir",
	    state, "--nvml-lib", (char *)FAKE_NVML_PATH, "--reserve", "0", "--llama-server",
	    llama_bin, "--ollama-url", "", "--llama-url", "http://127.0.0.1:9", "--rescan",
	    "0", "--idle-ttl", "0", "--sample-ms", "100", NULL };
	setenv("FAKE_NVML_STATE", nvml, 1);
	if (tu_spawn(&dmn, argv, log) < 0)
		return -1;
	free(log);
	port = du_port(&dmn);
	json_decref(du_poll(port, "/models", linked, NULL));
	return 0;
}

static int teardown(void **st)
{
	du_stop(&dmn);
	free(bin);
	free(models);
	free(state);
	free(nvml);
	free(llama_bin);
	free(model_path);
	free(proj_path);
	return 0;
}

static int gpu_total_is(json_t *j, void *arg)
{
	return (uint64_t)json_integer_value(du_at(j, "devices.0.total_bytes")) ==
	    *(uint64_t *)arg;
}

/* The fake GPU now has total bytes, and the daemon has sampled it. */
static void set_gpu(uint64_t total)
{
	du_fake_gpu(nvml, total, 0);
	json_decref(du_poll(port, "/vram", gpu_total_is, &total));
}

static int has_arg(json_t *args, const char *a)
{
	for (size_t i = 0; i < json_array_size(args); i++)
		if (strcmp(json_string_value(json_array_get(args, i)), a) == 0)
			return 1;
	return 0;
}

/* A chat request with an image through the daemon: answered by the child. */
static void chat_with_image(void)
{
	char *url = png_data_url();
	char *body = xasprintf("{\"model\":\"vis\",\"max_tokens\":4,\"messages\":[{\"role\":"
	    "\"user\",\"content\":[{\"type\":\"text\",\"text\":\"What is in this picture?\"},"
	    "{\"type\":\"image_url\",\"image_url\":{\"url\":\"%s\"}}]}]}", url);
	char *r = tu_http(port, "POST", "/v1/chat/completions", body);
	assert_non_null(r);
	if (strstr(r, " 200 ") == NULL)
		fail_msg("chat with an image: %s", r);
	assert_non_null(strstr(r, "\"choices\""));
	/* the image's tokens were counted: 16 of them (tiny-mmproj) and the text */
	const char *pt = strstr(r, "\"prompt_tokens\":");
	assert_non_null(pt);
	assert_true(strtol(pt + 16, NULL, 10) > 16);
	free(r);
	free(body);
	free(url);
}

static void unload(void)
{
	int s;
	json_decref(du_req(port, "POST", "/unload", "{\"model\":\"vis\"}", &s));
	assert_int_equal(s, 200);
}

static json_t *load(void)
{
	int s;
	json_t *j = du_req(port, "POST", "/load", "{\"model\":\"vis\",\"ctx\":512}", &s);
	assert_int_equal(s, 200);
	return j;
}

/* Room for the model and the encoder: both on the GPU; an image is answered. */
static void encoder_on_gpu_answers_image(void **st)
{
	uint64_t with, without;
	planned(&with, &without);
	set_gpu(with + (1 << 20));
	json_t *j = load();
	json_t *args = du_at(j, "plan.args");
	assert_true(has_arg(args, "--mmproj"));
	assert_false(has_arg(args, "--no-mmproj-offload"));
	assert_int_equal(json_integer_value(du_at(j, "plan.gpu_layers")), 3);
	json_decref(j);
	chat_with_image();
	unload();
}

/* Room for the model alone: the encoder goes to the CPU and every layer stays. */
static void encoder_moves_to_cpu_first(void **st)
{
	uint64_t with, without;
	planned(&with, &without);
	assert_true(without < with);
	set_gpu(without + (with - without) / 4);
	json_t *j = load();
	json_t *args = du_at(j, "plan.args");
	if (!has_arg(args, "--no-mmproj-offload")) {
		char *s = json_dumps(j, 0);
		fail_msg("with %llu bytes for %llu (encoder) and %llu: %s", (unsigned long long)
		    (without + (with - without) / 4), (unsigned long long)with,
		    (unsigned long long)without, s);
	}
	assert_int_equal(json_integer_value(du_at(j, "plan.gpu_layers")), 3);
	json_decref(j);
	chat_with_image();
	unload();
}

/* /vram/budget of the model counts its linked projector's encoder on the device: the
 * same device total as `mloffload plan --mmproj` with the same budget, above the model
 * alone. */
static void budget_counts_the_encoder(void **st)
{
	uint64_t with, without;
	planned(&with, &without);
	set_gpu(with + (8 << 20));
	json_t *b = du_get(port, "/vram/budget?model=vis&ctx=512");
	assert_true(json_is_true(json_object_get(b, "fits")));
	uint64_t dev = (uint64_t)json_integer_value(du_at(b, "plan.devices.0.total_bytes"));
	json_int_t budget = json_integer_value(du_at(b, "device.budget_bytes"));
	json_decref(b);
	char *out = tu_path("plan.json");
	assert_int_equal(tu_sh("%s/mloffload plan %s --mmproj %s --vram %lld --ctx 512 --json "
	    ">%s", getenv("MLO_BUILD_DIR"), model_path, proj_path, (long long)budget, out), 0);
	size_t len;
	char *text = (char *)tu_read_file(out, &len);
	assert_non_null(text);
	json_t *p = json_loadb(text, len, 0, NULL);
	assert_non_null(p);
	assert_string_equal(json_string_value(du_at(p, "mmproj.device")), "GPU0");
	assert_int_equal(dev, (uint64_t)json_integer_value(du_at(p, "devices.0.total_bytes")));
	assert_int_equal(dev, with);
	assert_true(dev > without);
	json_decref(p);
	free(text);
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(encoder_on_gpu_answers_image),
		cmocka_unit_test(encoder_moves_to_cpu_first),
		cmocka_unit_test(budget_counts_the_encoder),
	};
	int rc = cmocka_run_group_tests(tests, setup, teardown);
	return rc != 0 ? rc : du_stops_failed(); /* every daemon stopped cleanly */
}
