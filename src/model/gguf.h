/*
 * gguf: a bounds-checked reader of GGUF files (versions 2 and 3).
 *
 * Only the header is read (metadata and the tensor table), with pread into a heap
 * buffer that grows as the parser needs more of it (up to GGUF_MAX_HEADER, with a
 * read-ahead of at most 1 MiB past what it needs); weights are never read and the file
 * is never mapped, so a file truncated or rewritten while it is read is an error, not a
 * SIGBUS, and the result stays valid whatever happens to the file after gguf_open
 * returns. Nothing in the file is trusted: every length, count,
 * offset and dimension is checked against the file size and for overflow before use,
 * arrays are validated in place without being decoded, and a bad file yields an error
 * message naming what is wrong and at which byte offset.
 *
 * A split model (name-00001-of-00003.gguf) is opened through its first part: all parts
 * are opened and their tensor tables read as one model; metadata comes from part one.
 */
#ifndef MLO_GGUF_H
#define MLO_GGUF_H

#include <stddef.h>
#include <stdint.h>

enum gguf_type {
	GGUF_T_UINT8, GGUF_T_INT8, GGUF_T_UINT16, GGUF_T_INT16, GGUF_T_UINT32, GGUF_T_INT32,
	GGUF_T_FLOAT32, GGUF_T_BOOL, GGUF_T_STRING, GGUF_T_ARRAY, GGUF_T_UINT64, GGUF_T_INT64,
	GGUF_T_FLOAT64, GGUF_T_COUNT
};

#define GGUF_MAX_DIMS 4
#define GGUF_MAX_NAME 64          /* llama.cpp's GGML_MAX_NAME, terminator included */
#define GGUF_MAX_PARTS 256
#define GGUF_ERR_LEN 256
#define GGUF_MAX_HEADER (256ull << 20) /* bytes before the data section, at most */

struct gguf_str {
	const char *p;            /* points into the header buffer; not NUL-terminated */
	uint64_t len;
};

struct gguf_kv {
	struct gguf_str key;
	enum gguf_type type;      /* for arrays: GGUF_T_ARRAY */
	enum gguf_type arr_type;  /* element type when type is GGUF_T_ARRAY */
	uint64_t arr_n;           /* element count when type is GGUF_T_ARRAY */
	const uint8_t *val;       /* value bytes (after the array header for arrays) */
	uint64_t val_len;         /* bytes of the value, array elements included */
	uint64_t offset;          /* byte offset of the key in its file */
};

struct gguf_tensor {
	char name[GGUF_MAX_NAME];
	uint32_t n_dims;
	int64_t ne[GGUF_MAX_DIMS]; /* unused dims are 1 */
	uint32_t type;             /* ggml type id */
	uint64_t offset;           /* relative to its part's data section */
	uint64_t size;             /* bytes, ggml_nbytes of the shape and type */
	uint16_t part;             /* index of the split part holding the data */
};

struct gguf_part {
	char *path;
	uint64_t file_size;
	uint64_t data_offset;      /* where this part's data section starts */
};

struct gguf {
	uint32_t version;
	uint32_t alignment;
	uint64_t n_kv;
	struct gguf_kv *kv;        /* metadata of part one */
	uint64_t n_tensors;
	struct gguf_tensor *tensors; /* all parts, in order */
	uint32_t n_parts;
	struct gguf_part *parts;
	uint64_t total_file_size;  /* sum over parts */
	uint64_t header_bytes;     /* sum of header sizes (bytes before each data section) */
	/* private */
	uint8_t *buf;              /* mapped memory: the header bytes read (NULL for
	                            * gguf_parse), buf_cap bytes of it mapped */
	size_t buf_len, buf_cap;
	void *extra;               /* the other parts, while open */
	struct gguf_buf *lender;   /* where buf goes back at gguf_close, or NULL */
};

/* A header buffer to lend to gguf_open_buf, for a caller that opens many files one
 * after another (the folder scan): the memory of one header is kept from one open to
 * the next instead of being mapped, faulted in and unmapped each time. Start it zeroed;
 * free it with gguf_buf_free once no model opened through it is open. */
struct gguf_buf {
	uint8_t *p;
	size_t cap;
	uint64_t hint;            /* the last header's size: how much of the next file to
	                           * ask the kernel for at once (files in a folder look
	                           * alike) */
};

/* Opens path (and its sibling parts when it is part one of a split model). Returns a
 * heap object, free with gguf_close, or NULL with a message in err. */
struct gguf *gguf_open(const char *path, char *err, size_t errlen);
/* gguf_open reading into b's memory: the result holds it while open and gives it back
 * to b at gguf_close, so b must outlive the result (several may be open through one b:
 * b then keeps the largest buffer). b NULL: as gguf_open. */
struct gguf *gguf_open_buf(const char *path, struct gguf_buf *b, char *err, size_t errlen);
void gguf_buf_free(struct gguf_buf *b);
/* Asks the kernel to start reading the first b->hint bytes of path (the size of the last
 * header read through b) and returns at once, so that a caller reading many files has
 * the next one's header on its way from disk while it parses this one. Best effort:
 * nothing happens without a hint or when path does not open as a regular file. */
void gguf_prefetch(const char *path, const struct gguf_buf *b);
/* Parses a GGUF image held in memory (borrowed; must outlive the result). Split keys
 * are read but no other part is opened. Returns NULL with a message in err. */
struct gguf *gguf_parse(const void *buf, size_t len, char *err, size_t errlen);
void gguf_close(struct gguf *g);

/* Index of key, or -1. */
int64_t gguf_find(const struct gguf *g, const char *key);
/* Integer value of a scalar integer or bool kv (any width); -1 if not an integer. */
int gguf_get_int(const struct gguf *g, const char *key, int64_t *out);
/* Float value of a scalar float or integer kv. Returns 0 or -1. */
int gguf_get_float(const struct gguf *g, const char *key, double *out);
/* Copies a string kv into buf (truncated, NUL-terminated). Returns 0 or -1. */
int gguf_get_str(const struct gguf *g, const char *key, char *buf, size_t len);
/* Element j of an integer/bool/float array kv as int64 (floats truncated). Returns 0 or -1. */
int gguf_arr_int(const struct gguf_kv *kv, uint64_t j, int64_t *out);
/* Size in bytes of one element of a fixed-size type; 0 for strings and arrays. */
size_t gguf_type_size(enum gguf_type t);
const char *gguf_type_name(enum gguf_type t);

/* ggml tensor type ids: ggml.h's enum ggml_type of the pinned llama.cpp release (holes
 * are types it removed). Code names a type by these, never by its number. */
enum gguf_ggml_type {
	GGUF_GGML_F32 = 0, GGUF_GGML_F16 = 1, GGUF_GGML_Q4_0 = 2, GGUF_GGML_Q4_1 = 3,
	GGUF_GGML_Q5_0 = 6, GGUF_GGML_Q5_1 = 7, GGUF_GGML_Q8_0 = 8, GGUF_GGML_Q8_1 = 9,
	GGUF_GGML_Q2_K = 10, GGUF_GGML_Q3_K = 11, GGUF_GGML_Q4_K = 12, GGUF_GGML_Q5_K = 13,
	GGUF_GGML_Q6_K = 14, GGUF_GGML_Q8_K = 15, GGUF_GGML_IQ2_XXS = 16, GGUF_GGML_IQ2_XS = 17,
	GGUF_GGML_IQ3_XXS = 18, GGUF_GGML_IQ1_S = 19, GGUF_GGML_IQ4_NL = 20, GGUF_GGML_IQ3_S = 21,
	GGUF_GGML_IQ2_S = 22, GGUF_GGML_IQ4_XS = 23, GGUF_GGML_I8 = 24, GGUF_GGML_I16 = 25,
	GGUF_GGML_I32 = 26, GGUF_GGML_I64 = 27, GGUF_GGML_F64 = 28, GGUF_GGML_IQ1_M = 29,
	GGUF_GGML_BF16 = 30, GGUF_GGML_TQ1_0 = 34, GGUF_GGML_TQ2_0 = 35, GGUF_GGML_MXFP4 = 39,
	GGUF_GGML_NVFP4 = 40, GGUF_GGML_Q1_0 = 41, GGUF_GGML_Q2_0 = 42,
};

/* ggml tensor types: name, block size and bytes per block; NULL/0 when unknown. */
const char *gguf_ggml_type_name(uint32_t type);
int gguf_ggml_block(uint32_t type, uint32_t *blck, uint32_t *bytes);
/* Bytes of a row of n elements of type (n a multiple of the block size). */
uint64_t gguf_row_size(uint32_t type, int64_t n);
/* Index of the tensor named name, or -1. */
int64_t gguf_find_tensor(const struct gguf *g, const char *name);

#endif
