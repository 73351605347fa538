/*
 * gguf_raw: helpers shared by test_gguf and test_gguf_bad (see gguf_raw.c): GGUF bytes
 * built by hand, parse and open checks that fail the test, and the every-type file.
 */
#ifndef MLO_TEST_GGUF_RAW_H
#define MLO_TEST_GGUF_RAW_H

#include "gguf.h"
#include "ggufw.h"

#include <stddef.h>
#include <stdint.h>

#define F32 0
#define F16 1
#define Q8_0 8
#define Q4_K 12
#define BF16 30
#define MXFP4 39

#define ALL_DATA (128 + 192 + 128) /* tensor sizes, each a multiple of 64 */

/* A growing byte buffer for hand-made GGUF bytes. */
struct rb {
	uint8_t *p;
	size_t len, cap;
};

/* Appends n bytes of p (the rb_* below append one value each, in host byte order).
 * The buffer is on the heap: free it with rb_free. */
void rb_put(struct rb *b, const void *p, size_t n);
void rb_u8(struct rb *b, uint8_t v);
void rb_u16(struct rb *b, uint16_t v);
void rb_u32(struct rb *b, uint32_t v);
void rb_u64(struct rb *b, uint64_t v);
void rb_f32(struct rb *b, float v);
void rb_f64(struct rb *b, double v);
/* A GGUF string: u64 length, then the bytes. */
void rb_str(struct rb *b, const char *s);
/* A key and its value type; the value is the caller's. */
void rb_key(struct rb *b, const char *key, uint32_t type);
/* Key of an array: its element type and count follow; the elements are the caller's. */
void rb_arr(struct rb *b, const char *key, uint32_t elem, uint64_t n);
/* Magic, version and the two counts. */
void rb_header(struct rb *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv);
/* One tensor table entry. */
void rb_tensor(struct rb *b, const char *name, uint32_t n_dims, const int64_t *ne,
    uint32_t type, uint64_t offset);
void rb_zeros(struct rb *b, size_t n);
/* Zeros up to the next multiple of a. */
void rb_align(struct rb *b, size_t a);
/* Frees the bytes and empties b for reuse. */
void rb_free(struct rb *b);

/* Fails the test unless s contains sub. */
void expect_in(const char *s, const char *sub);
/* Parses a private copy of exactly len bytes. Returns the result; *copy must be freed
 * after gguf_close (the result borrows it). */
struct gguf *parse_exact(const void *p, size_t len, uint8_t **copy, char *err,
    size_t errlen);
/* Asserts that the bytes do not parse and that the error contains what and names the
 * byte offset at (any offset when at is negative). */
void expect_fail_at(const void *p, size_t len, const char *what, int64_t at);
/* expect_fail_at with any offset. */
void expect_fail(const struct rb *b, const char *what);
/* Parses b (which must stay alive until gguf_close) or fails the test. */
struct gguf *parse_ok(const struct rb *b);
/* Opens path with gguf_open or fails the test. */
struct gguf *open_ok(const char *path);
/* Asserts that gguf_open fails with an error containing both strings (what2 may be
 * NULL). */
void expect_open_fail(const char *path, const char *what, const char *what2);
/* Writes w to path (data as a hole) or fails the test. */
void write_ok(struct ggufw *w, const char *path);

/* Writes the valid v3 file with every value type (alignment 64, three tensors, ALL_DATA
 * bytes of data) to path. Returns its key count. */
uint64_t write_all_types(const char *path);
/* A file of the given version with one string key, "general.name" = "tiny". */
void one_string_file(struct rb *b, uint32_t version);

#endif
