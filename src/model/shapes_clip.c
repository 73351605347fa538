/*
 * shapes_clip: generated multimodal projectors. A projector GGUF holds the vision
 * encoder (v.*: patch embedding, learned positions, n_layer pre-norm ViT blocks, a post
 * norm) and the projector into the text model (mm.*), described by clip.* keys; the
 * names and shapes follow tools/mtmd/clip.cpp's loader for projector type gemma3, the
 * simplest one the pinned release supports whose encoder is a plain ViT.
 */
#include "shapes.h"
#include "ggufw.h"

#include <stdio.h>
#include <string.h>

enum { C_F32 = 0, C_F16 = 1 };

const struct shape_mmproj shapes_mmproj_all[] = {
	{ "tiny-mmproj", "gemma3 projector for tiny: 64x64 images, 2 ViT layers, 16 tokens "
	  "per image; random F32 weights", "gemma3", 64, 8, 2, 64, 128, 4, 2, 64, 1, "F32" },
	{ "small-mmproj", "gemma3 projector for small-llama: 224x224 images, patch 14, "
	  "4 ViT layers of n_embd 768", "gemma3", 224, 14, 4, 768, 3072, 12, 4, 256, 0, "F16" },
	{ "mid-mmproj", "gemma3 projector for small-qwen2: 448x448 images, patch 16, 6 ViT "
	  "layers of n_embd 512 (held out: never measured while the rule was written)",
	  "gemma3", 448, 16, 6, 512, 1536, 8, 4, 256, 0, "F16" },
	{ "gemma3-mmproj", "Gemma-3's SigLIP-400M projector (896x896, 27 layers) for gemma3-4b",
	  "gemma3", 896, 14, 27, 1152, 4304, 16, 4, 2560, 0, "F16" },
	{ NULL, NULL, NULL, 0, 0, 0, 0, 0, 0, 0, 0, 0, NULL },
};

const struct shape_mmproj *shapes_mmproj_find(const char *name)
{
	for (const struct shape_mmproj *s = shapes_mmproj_all; s->name; s++)
		if (strcmp(s->name, name) == 0)
			return s;
	return NULL;
}

static void tensor(struct ggufw *w, const char *name, uint32_t type, uint32_t nd, int64_t a,
    int64_t b, int64_t c, int64_t d)
{
	int64_t ne[4] = { a, b, c, d };
	ggufw_tensor(w, name, nd == 1 ? C_F32 : type, nd, ne);
}

static void metadata(struct ggufw *w, const struct shape_mmproj *s, uint32_t wt)
{
	static const float mean[3] = { 0.5f, 0.5f, 0.5f }, std[3] = { 0.5f, 0.5f, 0.5f };
	ggufw_str(w, "general.architecture", "clip");
	ggufw_str(w, "general.name", s->name);
	ggufw_u32(w, "general.file_type", wt);
	ggufw_str(w, "clip.projector_type", s->proj_type);
	ggufw_bool(w, "clip.has_vision_encoder", 1);
	ggufw_bool(w, "clip.use_gelu", 1);
	ggufw_u32(w, "clip.vision.image_size", s->image_size);
	ggufw_u32(w, "clip.vision.patch_size", s->patch_size);
	ggufw_u32(w, "clip.vision.embedding_length", s->n_embd);
	ggufw_u32(w, "clip.vision.feed_forward_length", s->n_ff);
	ggufw_u32(w, "clip.vision.block_count", s->n_layer);
	ggufw_u32(w, "clip.vision.projection_dim", s->n_embd_text);
	ggufw_u32(w, "clip.vision.attention.head_count", s->n_head);
	ggufw_f32(w, "clip.vision.attention.layer_norm_epsilon", 1e-6f);
	ggufw_u32(w, "clip.vision.projector.scale_factor", s->n_merge);
	ggufw_arr_f32(w, "clip.vision.image_mean", mean, 3);
	ggufw_arr_f32(w, "clip.vision.image_std", std, 3);
}

int shapes_mmproj_write(const struct shape_mmproj *s, int fill, uint64_t seed, const char *path,
    char *err, size_t errlen)
{
	uint32_t wt = strcmp(s->quant, "F16") == 0 ? C_F16 : C_F32;
	int64_t e = s->n_embd, f = s->n_ff, p = s->patch_size;
	int64_t n_pos = (int64_t)(s->image_size / s->patch_size) * (s->image_size / s->patch_size);
	struct ggufw *w = ggufw_new();
	metadata(w, s, wt);
	tensor(w, "v.patch_embd.weight", wt, 4, p, p, 3, e);
	tensor(w, "v.patch_embd.bias", wt, 1, e, 1, 1, 1);
	tensor(w, "v.position_embd.weight", wt, 2, e, n_pos, 1, 1);
	for (uint32_t i = 0; i < s->n_layer; i++) {
		static const char *sq[] = { "attn_q", "attn_k", "attn_v", "attn_out" };
		char n[96];
		for (size_t k = 0; k < 4; k++) {
			snprintf(n, sizeof n, "v.blk.%u.%s.weight", i, sq[k]);
			tensor(w, n, wt, 2, e, e, 1, 1);
			snprintf(n, sizeof n, "v.blk.%u.%s.bias", i, sq[k]);
			tensor(w, n, wt, 1, e, 1, 1, 1);
		}
		for (int k = 1; k <= 2; k++) {
			snprintf(n, sizeof n, "v.blk.%u.ln%d.weight", i, k);
			tensor(w, n, wt, 1, e, 1, 1, 1);
			snprintf(n, sizeof n, "v.blk.%u.ln%d.bias", i, k);
			tensor(w, n, wt, 1, e, 1, 1, 1);
		}
		snprintf(n, sizeof n, "v.blk.%u.ffn_up.weight", i);
		tensor(w, n, wt, 2, e, f, 1, 1);
		snprintf(n, sizeof n, "v.blk.%u.ffn_up.bias", i);
		tensor(w, n, wt, 1, f, 1, 1, 1);
		snprintf(n, sizeof n, "v.blk.%u.ffn_down.weight", i);
		tensor(w, n, wt, 2, f, e, 1, 1);
		snprintf(n, sizeof n, "v.blk.%u.ffn_down.bias", i);
		tensor(w, n, wt, 1, e, 1, 1, 1);
	}
	tensor(w, "v.post_ln.weight", wt, 1, e, 1, 1, 1);
	tensor(w, "v.post_ln.bias", wt, 1, e, 1, 1, 1);
	/* ne[0] is the text model's n_embd: clip_n_mmproj_embd reads it there */
	tensor(w, "mm.input_projection.weight", wt, 2, s->n_embd_text, e, 1, 1);
	tensor(w, "mm.soft_emb_norm.weight", wt, 1, e, 1, 1, 1);
	int rc = ggufw_write(w, path, (fill >= 0 ? fill : s->random) ? GGUFW_RANDOM : GGUFW_HOLE,
	    seed, err, errlen);
	ggufw_free(w);
	return rc;
}
