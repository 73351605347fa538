/*
 * gguf_int: what the two files of the GGUF reader share, and nothing else includes. The
 * cursor over a header and the validating walk over values (gguf_read.c: the file read
 * with pread into a buffer that grows, or lent by the caller) are used by the parser of
 * the header's sections (gguf.c). Private to gguf.
 */
#ifndef MLO_GGUF_INT_H
#define MLO_GGUF_INT_H

#include "gguf.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define GGUF_DEFAULT_ALIGN 32

/* A cursor over a header. Invariant: pos <= have <= len. */
struct gguf_cur {
	const uint8_t *base;       /* bytes [0, have) of the file */
	uint64_t have;
	uint64_t len;              /* bytes in the file (or the image) */
	uint64_t pos;
	int fd;                    /* -1: base holds the whole image (gguf_parse) */
	uint8_t *buf;              /* what was read from fd; the caller frees it
	                            * (gguf_buf_release) */
	size_t cap;                /* bytes of buf mapped */
	char *err;
	size_t errlen;
};

/* Writes "msg (at byte AT)" to c->err. Returns -1. */
int gguf_fail(struct gguf_cur *c, uint64_t at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* cur_need's slow path: checks n bytes remain in the file, then reads up to them. */
int gguf_cur_more(struct gguf_cur *c, uint64_t n, const char *what);

/* Makes the next n bytes readable at c->base + c->pos, or fails naming what. */
static inline int gguf_cur_need(struct gguf_cur *c, uint64_t n, const char *what)
{
	if (n <= c->have - c->pos) /* in the buffer already, so in the file */
		return 0;
	return gguf_cur_more(c, n, what);
}

static inline int gguf_rd_u32(struct gguf_cur *c, uint32_t *v, const char *what)
{
	if (gguf_cur_need(c, 4, what) < 0)
		return -1;
	memcpy(v, c->base + c->pos, 4);
	c->pos += 4;
	return 0;
}

static inline int gguf_rd_u64(struct gguf_cur *c, uint64_t *v, const char *what)
{
	if (gguf_cur_need(c, 8, what) < 0)
		return -1;
	memcpy(v, c->base + c->pos, 8);
	c->pos += 8;
	return 0;
}

/* Reads a string of at most cap bytes; s->p is valid only until the next read (the
 * buffer may move). */
int gguf_rd_str(struct gguf_cur *c, struct gguf_str *s, uint64_t cap, const char *what);
/* Skips over one value of type t, checking it fits; depth bounds nested arrays. For an
 * array, its element type and count go to *arr_type and *arr_n (when not NULL). */
int gguf_skip_value(struct gguf_cur *c, uint32_t t, int depth, enum gguf_type *arr_type,
    uint64_t *arr_n);
/* Frees a header buffer, or gives it back to the lender it came from (NULL: none). */
void gguf_buf_release(uint8_t *buf, size_t cap, struct gguf_buf *lender);

#endif
