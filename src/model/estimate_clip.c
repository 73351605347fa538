/*
 * estimate_clip: the memory of a multimodal projector's encoder, derived from how the
 * pinned llama.cpp's tools/mtmd/clip.cpp builds and reserves it (docs/estimator.md,
 * "Encoders"). The encoder runs on the first GPU-type device (an RPC server counts)
 * unless --no-mmproj-offload keeps it on the CPU; at load (warmup) clip.cpp builds the
 * graph of one image of clip.vision.image_size pixels a side, or of warmup_audio_size
 * mel frames, and ggml's allocator reserves the peak of the tensors alive at once.
 *
 * For a ViT of P positions, width E, FFN width F and H heads that peak is, in floats:
 *   FFN:       3 P E + P F     (residual, normed input and the up projection's output
 *                               live while the down projection's output is written)
 *   attention: 6 P E           (residual, normed input, Q, K, V, F16 copies of K and V,
 *                               the attention output) and, without flash attention,
 *                               H P^2 for the scores (soft_max works in place)
 * The raw image (3 S^2 floats) is consumed by the patch convolution early, so it fits
 * inside the peak on one backend; when the encoder runs on a device the CPU keeps it
 * as a buffer of its own (the scheduler's input copy).
 */
#include "estimate.h"

#include <stdio.h>
#include <string.h>

/* clip_model_loader's default warmup audio length (clip-model.h) in mel frames; the
 * whisper-style encoders halve it with a stride-2 convolution */
#define CLIP_WARMUP_AUDIO 3000

/* Projector types whose graph is clip_graph_siglip's ViT (models/siglip.cpp) with the
 * warmup at image_size: the rule above was derived on it and checked (gemma3). */
static int vit_checked(const char *t)
{
	static const char *const ok[] = { "gemma3", "idefics3", "lfm2", "janus_pro", "phi4",
		NULL };
	for (size_t i = 0; ok[i] != NULL; i++)
		if (strcmp(t, ok[i]) == 0)
			return 1;
	return 0;
}

static uint32_t u32(const struct gguf *g, const char *key, uint32_t dflt)
{
	int64_t v;
	return gguf_get_int(g, key, &v) == 0 && v >= 0 && v <= UINT32_MAX ? (uint32_t)v : dflt;
}

/* x clamped to 2^62: hostile sizes give a plan that does not fit, never a wrap */
static uint64_t sat(double x)
{
	return x < 0x1p62 ? (uint64_t)x : (1ull << 62);
}

/* The shape and buffers of the vision (or audio) encoder of g into c, by the rule at
 * the top of this file. */
static void encoder(const struct gguf *g, int vision, int flash_attn, struct est_clip *c)
{
	const char *pre = vision ? "clip.vision." : "clip.audio.";
	char k[96];
#define KEY(s) (snprintf(k, sizeof k, "%s%s", pre, s), k)
	c->n_embd = u32(g, KEY("embedding_length"), 0);
	c->n_ff = u32(g, KEY("feed_forward_length"), 4 * c->n_embd);
	c->n_head = u32(g, KEY("attention.head_count"), 1);
#undef KEY
	double P;
	if (vision) {
		uint32_t patch = u32(g, "clip.vision.patch_size", 1);
		c->warmup = u32(g, "clip.vision.image_size", 0);
		double side = patch ? (double)(c->warmup / patch) : 0;
		P = side * side + (gguf_find_tensor(g, "v.class_embd") >= 0);
		c->input = sat(3.0 * c->warmup * c->warmup * 4);
	} else {
		c->warmup = CLIP_WARMUP_AUDIO;
		P = CLIP_WARMUP_AUDIO / 2;
		c->input = sat(4.0 * CLIP_WARMUP_AUDIO * u32(g, "clip.audio.num_mel_bins", 128));
	}
	c->n_pos = P < 4e9 ? (uint32_t)P : UINT32_MAX;
	double E = c->n_embd, F = c->n_ff, H = c->n_head;
	double ffn = 3 * P * E + P * F, attn = 6 * P * E + (flash_attn == 0 ? H * P * P : 0);
	c->compute = sat(4 * (ffn > attn ? ffn : attn));
	if (c->compute < c->input)
		c->compute = c->input;
}

int est_clip_read(const struct gguf *g, int flash_attn, struct est_clip *c, char *err,
    size_t errlen)
{
	memset(c, 0, sizeof *c);
	char arch[32] = "";
	gguf_get_str(g, "general.architecture", arch, sizeof arch);
	if (strcmp(arch, "clip") != 0) {
		snprintf(err, errlen, "not a multimodal projector (general.architecture is '%s', "
		    "not 'clip')", arch);
		return -1;
	}
	for (uint64_t t = 0; t < g->n_tensors; t++)
		c->weights += est_tensor_bytes(&g->tensors[t]);
	int64_t v = 0;
	int vision = gguf_get_int(g, "clip.has_vision_encoder", &v) == 0 && v != 0;
	int audio = gguf_get_int(g, "clip.has_audio_encoder", &v) == 0 && v != 0;
	c->audio = !vision;
	if (gguf_get_str(g, vision ? "clip.vision.projector_type" : "clip.audio.projector_type",
	    c->proj_type, sizeof c->proj_type) < 0)
		gguf_get_str(g, "clip.projector_type", c->proj_type, sizeof c->proj_type);
	c->generic = !vision || !vit_checked(c->proj_type);
	encoder(g, vision, flash_attn, c);
	if (c->generic)
		c->compute += c->compute / EST_GENERIC_MARGIN;
	if (vision && audio) {
		/* a model of both (an Omni projector): clip.cpp makes a second context for
		 * the audio encoder on the same backend, with its own weights' share and
		 * compute buffer; planned with the generic margin */
		struct est_clip a = *c;
		encoder(g, 0, flash_attn, &a);
		c->compute += a.compute + a.compute / EST_GENERIC_MARGIN;
		c->input += a.input;
		c->generic = 1;
	}
	return 0;
}

void est_clip_apply(const struct est_clip *c, struct est_opts *o)
{
	o->mmproj_bytes = c->weights;
	o->mmproj_compute = c->compute;
	o->mmproj_input = c->input;
}
