/*
 * ggufw: a GGUF v3 writer, for tests, demos and benchmarks. Metadata is serialized as
 * it is added; tensors are declared by name, type and shape, and their data is either
 * left as a sparse hole (zeros, costing no disk) or filled with small random values.
 */
#ifndef MLO_GGUFW_H
#define MLO_GGUFW_H

#include <stddef.h>
#include <stdint.h>

#include "gguf.h"

struct ggufw;

enum ggufw_fill { GGUFW_HOLE, GGUFW_RANDOM };

/* Returns a heap writer; free with ggufw_free. */
struct ggufw *ggufw_new(void);
void ggufw_free(struct ggufw *w);

void ggufw_str(struct ggufw *w, const char *key, const char *val);
void ggufw_u32(struct ggufw *w, const char *key, uint32_t val);
void ggufw_i32(struct ggufw *w, const char *key, int32_t val);
void ggufw_u64(struct ggufw *w, const char *key, uint64_t val);
void ggufw_f32(struct ggufw *w, const char *key, float val);
void ggufw_bool(struct ggufw *w, const char *key, int val);
void ggufw_arr_i32(struct ggufw *w, const char *key, const int32_t *v, size_t n);
void ggufw_arr_f32(struct ggufw *w, const char *key, const float *v, size_t n);
/* Appends kv (borrowed from a reader) with its raw value bytes, under its own key. */
void ggufw_copy(struct ggufw *w, const struct gguf_kv *kv);
/* Appends raw bytes verbatim to the metadata section and counts n_kv keys in them:
 * for tests that build deliberately broken files. */
void ggufw_raw(struct ggufw *w, const void *p, size_t n, uint64_t n_kv);

/* Declares a tensor of ggml type `type` with n_dims dimensions ne[]. Returns 0, or -1
 * if the type is unknown or ne[0] is not a multiple of its block size. */
int ggufw_tensor(struct ggufw *w, const char *name, uint32_t type, uint32_t n_dims,
    const int64_t *ne);
/* Total bytes the file will have. */
uint64_t ggufw_file_size(const struct ggufw *w);
/* Writes the file. Returns 0, or -1 with a message in err (the file is removed). */
int ggufw_write(struct ggufw *w, const char *path, enum ggufw_fill fill, uint64_t seed,
    char *err, size_t errlen);

#endif
