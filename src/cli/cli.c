/*
 * cli: the mloffload command. `inspect` and `plan` read a GGUF header and answer from it
 * alone; `gen` writes models (cli_gen.c). Tables for people, --json for scripts.
 */
#include "arch.h"
#include "cli.h"
#include "client.h"
#include "estimate.h"
#include "gguf.h"
#include "model.h"
#include "plan.h"
#include "util.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f)
{
	fprintf(f,
	    "usage: mloffload inspect FILE [--json]\n"
	    "       mloffload plan FILE --vram SIZE[,SIZE...] [--ctx N] [--cache-type T]\n"
	    "                 [--cpu PATTERN]... [--offload auto|gpu|cpu] [--nkvo] [--no-repack]\n"
	    "                 [--rpc HOST:PORT[,HOST:PORT...]] [--split auto|never]\n"
	    "                 [--backend CUDA|ROCm|Vulkan]   (one --vram per device: GPUs, then RPC)\n"
	    "                 [--mmproj FILE]\n"
	    "                 [--flash-attn auto|on|off] [--ngl N [--n-cpu-moe N]] [--json]\n"
	    "       mloffload gen SHAPE OUT.gguf [options]   (mloffload gen --list)\n"
	    "       mloffload [--url URL] status|models|vram|scan [--json]   (a running mloffloadd)\n"
	    "       mloffload [--url URL] budget MODEL [--ctx N] [--json]\n"
	    "       mloffload [--url URL] ps|load|unload|switch|run|events|logs ...  (COMMAND --help)\n"
	    "         (the daemon's key: --api-key-file FILE before the command, or\n"
	    "          $MLOFFLOAD_API_KEY)\n"
	    "       mloffload --version\n");
}

static int json_print(json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(j);
	if (s == NULL)
		return 1;
	puts(s);
	free(s);
	return 0;
}

static const char *fmt(uint64_t b, char *buf, size_t len)
{
	return util_fmt_size(b, buf, len);
}

static void params_label(uint64_t n, char *buf, size_t len)
{
	if (n >= 1000000000ull)
		snprintf(buf, len, "%.2fB", (double)n / 1e9);
	else
		snprintf(buf, len, "%.1fM", (double)n / 1e6);
}

static int cmd_inspect(int argc, char **argv)
{
	const char *path = NULL;
	int json = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = 1;
		else if (path == NULL && argv[i][0] != '-')
			path = argv[i];
		else
			return usage(stderr), 2;
	}
	if (path == NULL)
		return usage(stderr), 2;
	char err[GGUF_ERR_LEN + 4096];
	struct gguf *g = gguf_open(path, err, sizeof err);
	if (g == NULL) {
		fprintf(stderr, "mloffload: %s\n", err);
		return 1;
	}
	struct arch_info a;
	if (arch_read(g, &a, err, sizeof err) < 0) {
		fprintf(stderr, "mloffload: %s: %s\n", path, err);
		gguf_close(g);
		return 1;
	}
	/* tensor summary: bytes and count per ggml type */
	uint64_t by_type[64] = { 0 }, cnt[64] = { 0 };
	for (uint64_t i = 0; i < g->n_tensors; i++) {
		uint32_t t = g->tensors[i].type < 64 ? g->tensors[i].type : 0;
		by_type[t] += g->tensors[i].size;
		cnt[t]++;
	}
	char pl[32], b1[32];
	params_label(a.n_params, pl, sizeof pl);
	int rc;
	if (json) {
		json_t *j = json_object(), *types = json_array();
		json_object_set_new(j, "path", json_string(path));
		json_object_set_new(j, "architecture", json_string(a.arch));
		json_object_set_new(j, "name", json_string(a.name));
		json_object_set_new(j, "gguf_version", json_integer(g->version));
		json_object_set_new(j, "parameters", json_integer((json_int_t)a.n_params));
		json_object_set_new(j, "parameters_label", json_string(pl));
		json_object_set_new(j, "quantization", json_string(a.quant));
		json_object_set_new(j, "layers", json_integer(a.n_layer));
		json_object_set_new(j, "embedding_length", json_integer(a.n_embd));
		json_object_set_new(j, "vocab_size", json_integer(a.n_vocab));
		json_object_set_new(j, "context_length", json_integer((json_int_t)a.n_ctx_train));
		json_object_set_new(j, "experts", json_integer(a.n_expert));
		json_object_set_new(j, "experts_used", json_integer(a.n_expert_used));
		json_object_set_new(j, "sliding_window", json_integer(a.n_swa));
		json_object_set_new(j, "embedding", json_boolean(a.pooling != 0));
		json_object_set_new(j, "pooling", a.pooling ?
		    json_string(arch_pooling_name(a.pooling)) : json_null());
		json_object_set_new(j, "tensors", json_integer((json_int_t)g->n_tensors));
		json_object_set_new(j, "tensor_bytes", json_integer((json_int_t)a.model_bytes));
		json_object_set_new(j, "file_bytes", json_integer((json_int_t)g->total_file_size));
		json_object_set_new(j, "split_parts", json_integer(g->n_parts));
		json_object_set_new(j, "metadata_keys", json_integer((json_int_t)g->n_kv));
		for (uint32_t t = 0; t < 64; t++) {
			if (cnt[t] == 0)
				continue;
			json_t *o = json_object();
			json_object_set_new(o, "type", json_string(gguf_ggml_type_name(t)));
			json_object_set_new(o, "count", json_integer((json_int_t)cnt[t]));
			json_object_set_new(o, "bytes", json_integer((json_int_t)by_type[t]));
			json_array_append_new(types, o);
		}
		json_object_set_new(j, "tensor_types", types);
		rc = json_print(j);
	} else {
		printf("file           %s (%u part%s, %s)\n", path, g->n_parts, g->n_parts > 1 ?
		    "s" : "", fmt(g->total_file_size, b1, sizeof b1));
		printf("architecture   %s\n", a.arch);
		if (a.name[0])
			printf("name           %s\n", a.name);
		printf("parameters     %s\n", pl);
		printf("quantization   %s\n", a.quant);
		printf("layers         %u\n", a.n_layer);
		printf("embedding      %u\n", a.n_embd);
		printf("heads          %u (KV %u)\n", a.n_head[0], a.n_head_kv[0]);
		printf("context        %llu\n", (unsigned long long)a.n_ctx_train);
		printf("vocabulary     %u\n", a.n_vocab);
		if (a.n_expert)
			printf("experts        %u (%u used)\n", a.n_expert, a.n_expert_used);
		if (a.n_swa)
			printf("sliding window %u\n", a.n_swa);
		if (a.pooling)
			printf("pooling        %s (an embedding model)\n",
			    arch_pooling_name(a.pooling));
		printf("tensors        %llu, %s\n", (unsigned long long)g->n_tensors,
		    fmt(a.model_bytes, b1, sizeof b1));
		for (uint32_t t = 0; t < 64; t++)
			if (cnt[t])
				printf("  %-8s %5llu  %s\n", gguf_ggml_type_name(t),
				    (unsigned long long)cnt[t], fmt(by_type[t], b1, sizeof b1));
		rc = 0;
	}
	arch_free(&a);
	gguf_close(g);
	return rc;
}

/* Colour when the terminal shows it: stdout a terminal, TERM not "dumb", no NO_COLOR. */
static int use_color(void)
{
	const char *t = getenv("TERM"), *nc = getenv("NO_COLOR");
	return isatty(STDOUT_FILENO) && t != NULL && strcmp(t, "dumb") != 0 &&
	    (nc == NULL || *nc == '\0');
}

#define MAP_WIDTH 50

/* One device's bar: its components to scale, then its free part up to cap (0: none). */
static void draw_map(const char *name, const struct plan_usage *u, uint64_t scale,
    uint64_t cap, int color)
{
	static const char sym[] = "#kcr.";
	static const char *const bg[] = { "44", "42", "43", "45", "100" };
	uint64_t part[5] = { u->model, u->kv, u->compute, u->repack, 0 };
	part[4] = cap > u->total ? cap - u->total : 0;
	char b[32];
	printf("%-10.10s [", name);
	int used = 0;
	for (int k = 0; k < 5; k++) {
		int n = scale ? (int)((double)part[k] / (double)scale * MAP_WIDTH + 0.5) : 0;
		if (n == 0 && part[k] > 0 && k < 4)
			n = 1;   /* present, however small */
		if (used + n > MAP_WIDTH)
			n = MAP_WIDTH - used;
		if (color && n > 0)
			printf("\033[%sm", bg[k]);
		for (int i = 0; i < n; i++)
			putchar(color ? ' ' : sym[k]);
		if (color && n > 0)
			printf("\033[0m");
		used += n;
	}
	printf("%*s] %s", MAP_WIDTH - used, "", util_fmt_size(u->total, b, sizeof b));
	if (cap > 0)
		printf(" of %s", util_fmt_size(cap, b, sizeof b));
	printf("\n");
}

/* The maps of n devices (cap 0: not drawn, no budget) and then the CPU's. */
static void draw_maps(const char *const *names, const struct plan_usage *const *u,
    const uint64_t *caps, int n, const struct plan_usage *cpu)
{
	int color = use_color();
	uint64_t scale = cpu->total;
	for (int i = 0; i < n; i++)
		if (caps[i] > scale)
			scale = caps[i];
	if (color)
		printf("memory map: \033[44m  \033[0m weights  \033[42m  \033[0m KV cache  "
		    "\033[43m  \033[0m compute  \033[45m  \033[0m repack  \033[100m  \033[0m free\n");
	else
		printf("memory map: # weights  k KV cache  c compute  r repack  . free\n");
	for (int i = 0; i < n; i++)
		if (caps[i] > 0)
			draw_map(names[i], u[i], scale, caps[i], color);
	draw_map("CPU", cpu, scale, 0, color);
}

/* The device list of a plan over several devices: budgets in llama.cpp's order, the
 * local GPUs first (named backend0, backend1...), the RPC servers last, in order. */
struct cli_devs {
	struct plan_device d[PLAN_MAX_DEVICES];
	size_t n;
};

static int parse_devs(const char *vram, const char *rpc, const char *backend,
    struct cli_devs *ds)
{
	char vb[1024], rb[2048], *save = NULL, *rpcs[PLAN_MAX_DEVICES];
	size_t n_rpc = 0;
	memset(ds, 0, sizeof *ds);
	snprintf(rb, sizeof rb, "%s", rpc ? rpc : "");
	for (char *t = strtok_r(rb, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (n_rpc == PLAN_MAX_DEVICES)
			return -1;
		rpcs[n_rpc++] = t;
	}
	snprintf(vb, sizeof vb, "%s", vram);
	save = NULL;
	for (char *t = strtok_r(vb, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (ds->n == PLAN_MAX_DEVICES || util_parse_size(t, &ds->d[ds->n].budget) < 0)
			return -1;
		ds->n++;
	}
	if (n_rpc > ds->n)
		return -1;
	size_t n_local = ds->n - n_rpc;
	for (size_t i = 0; i < ds->n; i++) {
		struct plan_device *d = &ds->d[i];
		if (i < n_local) {
			snprintf(d->name, sizeof d->name, "%s%zu", backend, i);
		} else {
			snprintf(d->name, sizeof d->name, "RPC%zu", i - n_local);
			snprintf(d->rpc, sizeof d->rpc, "%s", rpcs[i - n_local]);
		}
	}
	return 0;
}

/* The device used that is ds->d[i], or NULL. */
static const struct plan_dev_use *used(const struct plan_multi *p, const struct plan_device *d)
{
	for (int i = 0; i < p->n_dev; i++)
		if (strcmp(p->dev[i].name, d->name) == 0)
			return &p->dev[i];
	return NULL;
}

static json_t *multi_json(const char *path, const struct est *e, const struct cli_devs *ds,
    const struct plan_multi *p)
{
	json_t *j = json_object(), *args = json_array(), *devs = json_array();
	for (size_t i = 0; i < p->n_args; i++)
		json_array_append_new(args, json_string(p->args[i]));
	json_object_set_new(j, "model", json_string(path));
	json_object_set_new(j, "fits", json_boolean(p->fits));
	json_object_set_new(j, "gpu_layers", json_integer(p->ngl));
	json_object_set_new(j, "layers", json_integer(e->a.n_layer + 1));
	json_object_set_new(j, "n_cpu_moe", json_integer(p->n_cpu_moe));
	json_object_set_new(j, "ctx", json_integer(e->n_ctx));
	json_object_set_new(j, "split", json_boolean(p->split));
	json_object_set_new(j, "estimate", json_string(e->generic ? "generic" : "checked"));
	json_object_set_new(j, "args", args);
	uint64_t sum = 0;
	for (size_t i = 0; i < ds->n; i++) {
		const struct plan_dev_use *u = used(p, &ds->d[i]);
		struct plan_usage none = { 0 };
		json_t *o = model_usage_json(ds->d[i].name, u ? &u->use : &none, 0);
		json_object_set_new(o, "budget_bytes", json_integer((json_int_t)ds->d[i].budget));
		json_object_set_new(o, "used", json_boolean(u != NULL));
		if (u != NULL) {
			json_object_set_new(o, "run_name", json_string(u->run_name));
			json_object_set_new(o, "first_layer", json_integer(u->first));
			json_object_set_new(o, "n_layers", json_integer(u->count));
			json_object_set_new(o, "output", json_boolean(u->output));
		}
		if (ds->d[i].rpc[0])
			json_object_set_new(o, "rpc", json_string(ds->d[i].rpc));
		json_array_append_new(devs, o);
		sum += ds->d[i].budget;
	}
	json_array_append_new(devs, model_usage_json("CPU", &p->cpu, 1));
	json_object_set_new(j, "devices", devs);
	json_object_set_new(j, "budget_bytes", json_integer((json_int_t)sum));
	if (p->reason[0])
		json_object_set_new(j, "reason", json_string(p->reason));
	return j;
}

static void multi_text(const char *path, const struct est *e, const struct cli_devs *ds,
    const struct plan_multi *p)
{
	char b[5][32], names[PLAN_MAX_DEVICES][200];
	printf("%s: %s (%zu devices), %d of %u layers on", path, p->fits ? "fits" :
	    "does not fit", ds->n, p->ngl, e->a.n_layer + 1);
	for (int i = 0; i < p->n_dev; i++)
		printf("%s %s", i ? "," : "", p->dev[i].name);
	printf("%s%s\n", p->n_dev ? "" : " none", p->n_cpu_moe ? " (experts partly on CPU)" : "");
	printf("%-24s %11s %11s %11s %11s %11s %7s\n", "device", "model", "kv", "compute",
	    "repack", "total", "layers");
	const char *np[PLAN_MAX_DEVICES];
	const struct plan_usage *up[PLAN_MAX_DEVICES];
	uint64_t caps[PLAN_MAX_DEVICES];
	struct plan_usage none = { 0 };
	for (size_t i = 0; i <= ds->n; i++) {
		const struct plan_dev_use *u = i < ds->n ? used(p, &ds->d[i]) : NULL;
		const struct plan_usage *x = i == ds->n ? &p->cpu : u ? &u->use : &none;
		char lay[24] = "-";
		if (u != NULL)
			snprintf(lay, sizeof lay, "%d-%d", u->first, u->first + u->count - 1);
		if (i < ds->n) {
			snprintf(names[i], sizeof names[i], "%s%s%s%s", ds->d[i].name,
			    ds->d[i].rpc[0] ? "[" : "", ds->d[i].rpc, ds->d[i].rpc[0] ? "]" : "");
			np[i] = names[i];
			up[i] = x;
			caps[i] = ds->d[i].budget;
		}
		printf("%-24s %11s %11s %11s %11s %11s %7s\n", i < ds->n ? names[i] : "CPU",
		    fmt(x->model, b[0], 32), fmt(x->kv, b[1], 32), fmt(x->compute, b[2], 32),
		    fmt(x->repack, b[4], 32), fmt(x->total, b[3], 32), i < ds->n ? lay : "");
	}
	draw_maps(np, up, caps, (int)ds->n, &p->cpu);
	if (p->reason[0])
		printf("%s\n", p->reason);
	printf("llama-server -m %s", path);
	for (size_t i = 0; i < p->n_args; i++)
		printf(" %s", p->args[i]);
	printf("\n");
}

/* mloffload plan over several devices: returns the exit status. */
static int plan_several(const char *path, const struct est *e, const struct plan_opts *po,
    const struct cli_devs *ds, enum plan_split split, int json)
{
	char err[256];
	struct plan_multi p;
	if (plan_multi_make(e, ds->d, ds->n, po, split, &p, err, sizeof err) < 0) {
		fprintf(stderr, "mloffload: %s\n", err);
		return 1;
	}
	int rc = 0;
	if (json)
		rc = json_print(multi_json(path, e, ds, &p));
	else
		multi_text(path, e, ds, &p);
	if (!p.fits && rc == 0)
		rc = 3;
	plan_multi_free(&p);
	return rc;
}

/* mloffload plan's command line, parsed. */
struct plan_cmd {
	const char *path, *rpc, *vram_arg, *backend;
	int json, have_vram;
	enum plan_split split;
	uint64_t vram;            /* the one budget, when --vram names one */
	struct est_opts eo;
	struct plan_opts po;
	struct est_clip clip;     /* the projector's encoder, with --mmproj */
};

/* What the option parsers below return, besides the count of values they took. */
#define OPT_NOT_MINE (-1)
#define OPT_BAD (-2)              /* a bad value, said on stderr: exit 2 */
#define OPT_FAILED (-3)           /* a file that does not read, said on stderr: exit 1 */

/* The options that change the estimate: --ctx, --cache-type, --flash-attn, --mmproj. */
static int plan_opt_model(struct plan_cmd *pc, const char *a, const char *v)
{
	long long n;
	if (v == NULL)
		return OPT_NOT_MINE;
	if (strcmp(a, "--ctx") == 0) {
		if (util_parse_int(v, 0, MODEL_MAX_CTX, &n) < 0) {
			fprintf(stderr, "mloffload: --ctx: '%s' is not a context size\n", v);
			return OPT_BAD;
		}
		pc->eo.n_ctx = (uint32_t)n;
	} else if (strcmp(a, "--cache-type") == 0) {
		if (est_cache_type(v, &pc->eo.type_k) < 0) {
			fprintf(stderr, "mloffload: --cache-type: unknown type '%s'\n", v);
			return OPT_BAD;
		}
		pc->eo.type_v = pc->eo.type_k;
	} else if (strcmp(a, "--flash-attn") == 0) {
		pc->eo.flash_attn = strcmp(v, "on") == 0 ? 1 : strcmp(v, "off") == 0 ? 0 :
		    strcmp(v, "auto") == 0 ? -1 : -2;
		if (pc->eo.flash_attn == -2) {
			fprintf(stderr, "mloffload: --flash-attn: auto, on or off\n");
			return OPT_BAD;
		}
	} else if (strcmp(a, "--mmproj") == 0) {
		pc->po.mmproj = v; /* read once every option is known (flash attention) */
	} else {
		return OPT_NOT_MINE;
	}
	return 1;
}

/* The options of the devices: --vram, --rpc, --backend, --split. */
static int plan_opt_devices(struct plan_cmd *pc, const char *a, const char *v)
{
	if (v == NULL)
		return OPT_NOT_MINE;
	if (strcmp(a, "--split") == 0) {
		if (strcmp(v, "auto") != 0 && strcmp(v, "never") != 0) {
			fprintf(stderr, "mloffload: --split: auto or never\n");
			return OPT_BAD;
		}
		pc->split = strcmp(v, "never") == 0 ? PLAN_SPLIT_NEVER : PLAN_SPLIT_AUTO;
	} else if (strcmp(a, "--backend") == 0) {
		pc->backend = v;
	} else if (strcmp(a, "--vram") == 0) {
		pc->vram_arg = v;
		if (strchr(v, ',') == NULL && util_parse_size(v, &pc->vram) < 0) {
			fprintf(stderr, "mloffload: --vram: '%s' is not a size (e.g. 6G, 512M)\n", v);
			return OPT_BAD;
		}
		pc->have_vram = 1;
	} else if (strcmp(a, "--rpc") == 0) {
		pc->rpc = v;
	} else {
		return OPT_NOT_MINE;
	}
	return 1;
}

/* The options of the placement: --cpu, --offload, --ngl, --n-cpu-moe, --nkvo,
 * --no-repack. */
static int plan_opt_place(struct plan_cmd *pc, const char *a, const char *v)
{
	struct plan_opts *po = &pc->po;
	long long n;
	if (strcmp(a, "--nkvo") == 0) {
		po->no_kv_offload = 1;
		return 0;
	}
	if (strcmp(a, "--no-repack") == 0) {
		po->no_repack = 1;
		return 0;
	}
	if (v == NULL)
		return OPT_NOT_MINE;
	if (strcmp(a, "--cpu") == 0) {
		if (po->n_cpu_patterns == PLAN_MAX_PATTERNS) {
			fprintf(stderr, "mloffload: at most %d --cpu patterns\n", PLAN_MAX_PATTERNS);
			return OPT_BAD;
		}
		po->cpu_patterns[po->n_cpu_patterns++] = v;
	} else if (strcmp(a, "--offload") == 0) {
		if (strcmp(v, "auto") == 0) {
			po->offload = PLAN_AUTO;
		} else if (strcmp(v, "gpu") == 0) {
			po->offload = PLAN_GPU;
		} else if (strcmp(v, "cpu") == 0) {
			po->offload = PLAN_CPU;
		} else {
			fprintf(stderr, "mloffload: --offload: auto, gpu or cpu\n");
			return OPT_BAD;
		}
	} else if (strcmp(a, "--ngl") == 0 || strcmp(a, "--n-cpu-moe") == 0) {
		if (util_parse_int(v, 0, ARCH_MAX_LAYERS + 1, &n) < 0) {
			fprintf(stderr, "mloffload: %s: '%s' is not a layer count\n", a, v);
			return OPT_BAD;
		}
		if (strcmp(a, "--ngl") == 0)
			po->ngl = (int)n;
		else
			po->n_cpu_moe = (int)n;
	} else {
		return OPT_NOT_MINE;
	}
	return 1;
}

/* Parses mloffload plan's arguments into pc. Returns 0, or the exit status. */
static int plan_parse(struct plan_cmd *pc, int argc, char **argv)
{
	memset(pc, 0, sizeof *pc);
	pc->backend = "CUDA";
	pc->split = PLAN_SPLIT_AUTO;
	est_defaults(&pc->eo);
	pc->po.ngl = -1;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int r = OPT_NOT_MINE;
		if (strcmp(a, "--json") == 0) {
			pc->json = 1;
			r = 0;
		} else if (pc->path == NULL && a[0] != '-') {
			pc->path = a;
			r = 0;
		}
		if (r == OPT_NOT_MINE)
			r = plan_opt_model(pc, a, v);
		if (r == OPT_NOT_MINE)
			r = plan_opt_devices(pc, a, v);
		if (r == OPT_NOT_MINE)
			r = plan_opt_place(pc, a, v);
		if (r == OPT_NOT_MINE)
			return usage(stderr), 2;
		if (r == OPT_BAD || r == OPT_FAILED)
			return r == OPT_BAD ? 2 : 1;
		i += r;
	}
	if (pc->path == NULL || !pc->have_vram) {
		fprintf(stderr, "mloffload: plan needs a FILE and --vram SIZE\n");
		return usage(stderr), 2;
	}
	char err[GGUF_ERR_LEN + 4096];
	if (pc->po.mmproj != NULL &&
	    model_mmproj(pc->po.mmproj, &pc->eo, &pc->clip, err, sizeof err) < 0) {
		fprintf(stderr, "mloffload: --mmproj: %s\n", err);
		return 1;
	}
	return 0;
}

/* Where the projector's encoder runs under plan p and what it takes (plan --json). */
static json_t *mmproj_json(const struct plan *p, const struct est *e, const struct est_clip *c)
{
	json_t *m = json_object();
	json_object_set_new(m, "projector_type", json_string(c->proj_type));
	json_object_set_new(m, "modality", json_string(c->audio ? "audio" : "vision"));
	json_object_set_new(m, "device", json_string(p->mmproj_cpu ? "CPU" : p->dev_name));
	json_object_set_new(m, "weights_bytes", json_integer((json_int_t)c->weights));
	json_object_set_new(m, "compute_bytes", json_integer((json_int_t)c->compute));
	json_object_set_new(m, "input_bytes", json_integer((json_int_t)c->input));
	json_object_set_new(m, "warmup", json_integer(c->warmup));
	/* what keeping it on the CPU frees on the device (0 when it stays there) */
	json_object_set_new(m, "device_saving_bytes", json_integer(p->mmproj_cpu && p->ngl > 0 ?
	    (json_int_t)plan_mmproj_saving(e) : 0));
	json_object_set_new(m, "estimate", json_string(c->generic ? "generic" : "checked"));
	return m;
}

static void mmproj_text(const struct plan *p, const struct est *e, const struct est_clip *c)
{
	char w[32], cb[32], sv[32];
	printf("encoder: %s %s, weights %s + compute %s (warmup %u%s) on %s", c->proj_type,
	    c->audio ? "audio" : "vision", util_fmt_size(c->weights, w, sizeof w),
	    util_fmt_size(c->compute, cb, sizeof cb), c->warmup, c->audio ? " frames" : " px",
	    p->mmproj_cpu ? "CPU" : p->dev_name);
	if (p->mmproj_cpu && p->ngl > 0)
		printf(" (--no-mmproj-offload saves %s on %s)",
		    util_fmt_size(plan_mmproj_saving(e), sv, sizeof sv), p->dev_name);
	printf("%s\n", c->generic ? "; generic estimate (+25%)" : "");
}

static json_t *one_json(const struct plan_cmd *pc, const struct est *e, const struct plan *p)
{
	json_t *j = json_object(), *args = json_array(), *devs = json_array();
	for (size_t i = 0; i < p->n_args; i++)
		json_array_append_new(args, json_string(p->args[i]));
	json_object_set_new(j, "model", json_string(pc->path));
	json_object_set_new(j, "fits", json_boolean(p->fits));
	json_object_set_new(j, "gpu_layers", json_integer(p->ngl));
	json_object_set_new(j, "layers", json_integer(e->a.n_layer + 1));
	json_object_set_new(j, "n_cpu_moe", json_integer(p->n_cpu_moe));
	json_object_set_new(j, "ctx", json_integer(e->n_ctx));
	json_object_set_new(j, "estimate", json_string(e->generic ? "generic" : "checked"));
	json_object_set_new(j, "args", args);
	json_array_append_new(devs, model_usage_json(p->dev_name, &p->dev, 0));
	json_array_append_new(devs, model_usage_json("CPU", &p->cpu, 1));
	json_object_set_new(j, "devices", devs);
	json_object_set_new(j, "budget_bytes", json_integer((json_int_t)pc->vram));
	if (p->reason[0])
		json_object_set_new(j, "reason", json_string(p->reason));
	if (pc->po.mmproj != NULL)
		json_object_set_new(j, "mmproj", mmproj_json(p, e, &pc->clip));
	return j;
}

static void one_text(const struct plan_cmd *pc, const struct est *e, const struct plan *p)
{
	char b[5][32];
	char bud[32];
	uint64_t vram = pc->vram;
	printf("%s: %s in %s, %d of %u layers on %s%s\n", pc->path, p->fits ? "fits" :
	    "does not fit", util_fmt_size(vram, bud, sizeof bud), p->ngl, e->a.n_layer + 1,
	    p->dev_name, p->n_cpu_moe ? " (experts partly on CPU)" : "");
	printf("%-24s %11s %11s %11s %11s %11s\n", "device", "model", "kv", "compute",
	    "repack", "total");
	const struct plan_usage *u[2] = { &p->dev, &p->cpu };
	const char *names[2] = { p->dev_name, "CPU" };
	for (int i = 0; i < 2; i++)
		printf("%-24s %11s %11s %11s %11s %11s\n", names[i],
		    fmt(u[i]->model, b[0], 32), fmt(u[i]->kv, b[1], 32),
		    fmt(u[i]->compute, b[2], 32), fmt(u[i]->repack, b[4], 32),
		    fmt(u[i]->total, b[3], 32));
	const char *mn[1] = { p->dev_name };
	const struct plan_usage *mu[1] = { &p->dev };
	draw_maps(mn, mu, &vram, 1, &p->cpu);
	if (p->reason[0])
		printf("%s\n", p->reason);
	if (pc->po.mmproj != NULL)
		mmproj_text(p, e, &pc->clip);
	if (e->generic)
		printf("estimate: generic (no checked rules for architecture '%s': transformer "
		    "rules, compute buffers +%d%%)\n", e->a.arch, 100 / EST_GENERIC_MARGIN);
	printf("llama-server -m %s", pc->path);
	for (size_t i = 0; i < p->n_args; i++)
		printf(" %s", p->args[i]);
	printf("\n");
}

/* mloffload plan on one device (or none: --vram 0): returns the exit status. */
static int plan_one(const struct plan_cmd *pc, const struct est *e)
{
	char err[256];
	struct plan_device dev;
	memset(&dev, 0, sizeof dev);
	dev.budget = pc->vram;
	if (pc->rpc != NULL) {
		snprintf(dev.name, sizeof dev.name, "RPC0[%s]", pc->rpc);
		snprintf(dev.rpc, sizeof dev.rpc, "%s", pc->rpc);
	} else {
		snprintf(dev.name, sizeof dev.name, "GPU0");
	}
	struct plan p;
	if (plan_make(e, pc->vram > 0 || pc->rpc ? &dev : NULL, &pc->po, &p, err,
	    sizeof err) < 0) {
		fprintf(stderr, "mloffload: %s\n", err);
		return 1;
	}
	int rc = 0;
	if (pc->json)
		rc = json_print(one_json(pc, e, &p));
	else
		one_text(pc, e, &p);
	if (!p.fits && rc == 0)
		rc = 3;
	plan_free(&p);
	return rc;
}

static int cmd_plan(int argc, char **argv)
{
	struct plan_cmd pc;
	int rc = plan_parse(&pc, argc, argv);
	if (rc != 0)
		return rc;
	char err[GGUF_ERR_LEN + 4096];
	struct gguf *g;
	struct est e;
	if (model_estimate(pc.path, &pc.eo, &g, &e, err, sizeof err) < 0) {
		fprintf(stderr, "mloffload: %s\n", err);
		return 1;
	}
	if (strchr(pc.vram_arg, ',') != NULL || (pc.rpc != NULL && strchr(pc.rpc, ',') != NULL)) {
		struct cli_devs ds;
		rc = 2;
		if (parse_devs(pc.vram_arg, pc.rpc, pc.backend, &ds) < 0)
			fprintf(stderr, "mloffload: --vram: one size per device (at most %d), the "
			    "RPC servers' last: '%s'\n", PLAN_MAX_DEVICES, pc.vram_arg);
		else
			rc = plan_several(pc.path, &e, &pc.po, &ds, pc.split, pc.json);
	} else {
		rc = plan_one(&pc, &e);
	}
	est_free(&e);
	gguf_close(g);
	return rc;
}

/* The commands that talk to a daemon are in mloffload-client, beside this binary, so
 * that plan, inspect and gen never load libcurl and its dozens of shared objects (most
 * of a start of this command: bench/startup.sh). Returns only on failure. */
static int exec_client(char **argv)
{
	char self[PATH_MAX], *path = NULL;
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n > 0) {
		self[n] = '\0';
		char *slash = strrchr(self, '/');
		if (slash != NULL) {
			path = xasprintf("%.*s/mloffload-client", (int)(slash - self), self);
			argv[0] = path;
			execv(path, argv);
		}
	}
	fprintf(stderr, "mloffload: cannot run %s: %s\n", path ? path : "mloffload-client",
	    n > 0 ? strerror(errno) : "cannot find this program's folder");
	free(path);
	return 1;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "inspect") == 0)
		return cmd_inspect(argc - 1, argv + 1);
	if (strcmp(cmd, "plan") == 0)
		return cmd_plan(argc - 1, argv + 1);
	if (strcmp(cmd, "gen") == 0)
		return cli_gen(argc - 1, argv + 1);
	if (client_is_command(cmd) || strcmp(cmd, "--url") == 0 ||
	    strcmp(cmd, "--api-key-file") == 0)
		return exec_client(argv);
	if (strcmp(cmd, "--version") == 0) {
		printf("mloffload %s\n", MLO_VERSION);
		return 0;
	}
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "mloffload: unknown command '%s'\n", cmd);
	usage(stderr);
	return 2;
}
