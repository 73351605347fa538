/*
 * gguf_read: how the GGUF reader (gguf.c) gets at a header's bytes and checks its values
 * without decoding them. Private to gguf: see gguf_int.h.
 *
 * Every read goes through gguf_cur_need(), which checks the remaining length of the file
 * first, so no path reads past the end, and then makes sure the bytes are in memory: a
 * file is read with pread into a buffer that grows as the parser needs more of the
 * header (with a bounded read-ahead, capped at GGUF_MAX_HEADER), never mapped, so a file
 * truncated or rewritten while it is read is a read error here, not a SIGBUS in whoever
 * touches the header later. The buffer is anonymous memory of its own, or memory a
 * caller that opens many files lends (struct gguf_buf), so that each header does not
 * pay for fresh pages. Arrays are validated in place: fixed-size elements by
 * arithmetic, strings by walking their lengths (a tight loop while the bytes are in
 * the buffer), nested arrays recursively up to a depth cap.
 */
#include "gguf_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define GGUF_MAX_DEPTH 8           /* nesting of arrays */
#define GGUF_READ_FIRST (64u << 10)  /* first read; later reads ahead up to ... */
#define GGUF_READ_AHEAD (1u << 20)   /* ... this much past what the parser needs: the
                                      * last read overshoots the header into the weights
                                      * by up to this much, on disk for a cold file */

int gguf_fail(struct gguf_cur *c, uint64_t at, const char *fmt, ...)
{
	char msg[GGUF_ERR_LEN];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	snprintf(c->err, c->errlen, "%s (at byte %" PRIu64 ")", msg, at);
	return -1;
}

/* Grows c->buf to hold want bytes. The buffer is anonymous memory, asked for in huge
 * pages where the kernel has them: a header is mostly a vocabulary of several MiB, and
 * filling it page by page cost three times the parse (page faults) on a VM. mremap
 * moves it without copying. */
static void buf_grow(struct gguf_cur *c, size_t want)
{
	if (want <= c->cap)
		return;
	size_t cap = c->cap ? c->cap : 64u << 10;
	while (cap < want)
		cap *= 2;
	void *p = c->buf == NULL ?
	    mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) :
	    mremap(c->buf, c->cap, cap, MREMAP_MAYMOVE);
	if (p == MAP_FAILED) { /* out of memory, as xmalloc treats it */
		fprintf(stderr, "fatal: out of memory mapping %zu bytes for a GGUF header\n", cap);
		abort();
	}
	if (cap >= (2u << 20))
		madvise(p, cap, MADV_HUGEPAGE); /* a hint: refused or not, the memory works */
	c->buf = p;
	c->cap = cap;
}

void gguf_buf_release(uint8_t *buf, size_t cap, struct gguf_buf *lender)
{
	if (buf == NULL)
		return;
	if (lender != NULL && lender->cap < cap) { /* keep the larger of the two */
		uint8_t *old = lender->p;
		size_t old_cap = lender->cap;
		lender->p = buf;
		lender->cap = cap;
		buf = old;
		cap = old_cap;
	}
	if (buf != NULL)
		munmap(buf, cap);
}

void gguf_buf_free(struct gguf_buf *b)
{
	if (b->p != NULL)
		munmap(b->p, b->cap);
	b->p = NULL;
	b->cap = 0;
}

/* Makes bytes [0, end) of the file readable at c->base (end <= c->len). */
static int cur_fill(struct gguf_cur *c, uint64_t end)
{
	if (end <= c->have)
		return 0;
	if (end > GGUF_MAX_HEADER)
		return gguf_fail(c, c->pos, "the header goes past the %u MiB limit for a GGUF "
		    "header", (unsigned)(GGUF_MAX_HEADER >> 20));
	uint64_t ahead = c->have < GGUF_READ_FIRST ? GGUF_READ_FIRST :
	    c->have > GGUF_READ_AHEAD ? GGUF_READ_AHEAD : c->have;
	uint64_t want = end + ahead;
	if (want > c->len)
		want = c->len;
	if (want > GGUF_MAX_HEADER)
		want = GGUF_MAX_HEADER;
	buf_grow(c, (size_t)want);
	c->base = c->buf;
	while (c->have < want) {
		ssize_t r = pread(c->fd, c->buf + c->have, (size_t)(want - c->have),
		    (off_t)c->have);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return gguf_fail(c, c->have, "read error: %s", strerror(errno));
		if (r == 0)
			return gguf_fail(c, c->have, "the file shrank while it was read: it ends "
			    "here, it had %" PRIu64 " bytes", c->len);
		c->have += (uint64_t)r;
	}
	return 0;
}

int gguf_cur_more(struct gguf_cur *c, uint64_t n, const char *what)
{
	if (n > c->len - c->pos)
		return gguf_fail(c, c->pos, "file ends inside %s: %" PRIu64 " bytes needed, %"
		    PRIu64 " left", what, n, c->len - c->pos);
	return cur_fill(c, c->pos + n);
}

int gguf_rd_str(struct gguf_cur *c, struct gguf_str *s, uint64_t cap, const char *what)
{
	uint64_t at = c->pos;
	if (gguf_rd_u64(c, &s->len, what) < 0)
		return -1;
	if (s->len > cap)
		return gguf_fail(c, at, "%s length %" PRIu64 " exceeds the limit of %" PRIu64,
		    what, s->len, cap);
	if (gguf_cur_need(c, s->len, what) < 0)
		return -1;
	s->p = (const char *)c->base + c->pos;
	c->pos += s->len;
	return 0;
}

static const char *type_names[GGUF_T_COUNT] = {
	"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64",
	"i64", "f64",
};

size_t gguf_type_size(enum gguf_type t)
{
	static const uint8_t sz[GGUF_T_COUNT] = { 1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8 };
	return (unsigned)t < GGUF_T_COUNT ? sz[t] : 0;
}

const char *gguf_type_name(enum gguf_type t)
{
	return (unsigned)t < GGUF_T_COUNT ? type_names[t] : "invalid";
}

/* The n strings of an array. A vocabulary is hundreds of thousands of them, so while
 * an element lies whole in the buffer its length is checked and stepped over here; an
 * element that does not (more to read, or bad) takes gguf_rd_str's checked path, which
 * says the same as it always did. */
static int skip_strings(struct gguf_cur *c, uint64_t n)
{
	struct gguf_str s;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t left = c->have - c->pos, len;
		if (left >= 8) {
			memcpy(&len, c->base + c->pos, 8);
			if (len <= left - 8) {
				c->pos += 8 + len;
				continue;
			}
		}
		if (gguf_rd_str(c, &s, UINT64_MAX, "string value") < 0)
			return -1;
	}
	return 0;
}

int gguf_skip_value(struct gguf_cur *c, uint32_t t, int depth, enum gguf_type *arr_type,
    uint64_t *arr_n)
{
	uint64_t at = c->pos;
	if (t >= GGUF_T_COUNT)
		return gguf_fail(c, at, "invalid value type %" PRIu32, t);
	if (t == GGUF_T_STRING) {
		struct gguf_str s;
		return gguf_rd_str(c, &s, UINT64_MAX, "string value");
	}
	if (t != GGUF_T_ARRAY) {
		if (gguf_cur_need(c, gguf_type_size(t), "value") < 0)
			return -1;
		if (t == GGUF_T_BOOL && c->base[c->pos] > 1)
			return gguf_fail(c, at, "bool value %u is neither 0 nor 1",
			    c->base[c->pos]);
		c->pos += gguf_type_size(t);
		return 0;
	}
	if (depth >= GGUF_MAX_DEPTH)
		return gguf_fail(c, at, "arrays nested deeper than %d levels", GGUF_MAX_DEPTH);
	uint32_t et;
	uint64_t n;
	if (gguf_rd_u32(c, &et, "array type") < 0 || gguf_rd_u64(c, &n, "array length") < 0)
		return -1;
	if (et >= GGUF_T_COUNT)
		return gguf_fail(c, at, "array of invalid element type %" PRIu32, et);
	if (arr_type != NULL) {
		*arr_type = et;
		*arr_n = n;
	}
	size_t es = gguf_type_size(et);
	uint64_t min = es ? es : (et == GGUF_T_STRING ? 8 : 12);
	if (n > (c->len - c->pos) / min)
		return gguf_fail(c, at, "array of %" PRIu64 " %s elements cannot fit in the %"
		    PRIu64 " bytes left", n, gguf_type_name(et), c->len - c->pos);
	if (es != 0 && et != GGUF_T_BOOL) {
		if (gguf_cur_need(c, n * es, "array") < 0) /* fits: n <= left / es */
			return -1;
		c->pos += n * es;
		return 0;
	}
	if (et == GGUF_T_STRING)
		return skip_strings(c, n);
	for (uint64_t i = 0; i < n; i++)
		if (gguf_skip_value(c, et, depth + 1, NULL, NULL) < 0)
			return -1;
	return 0;
}
