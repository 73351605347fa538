/*
 * util: the small things every module needs. Allocation through the x* family aborts
 * on out-of-memory (so OOM is not an error path anywhere else), logging with a level
 * check before formatting, size parsing and formatting for people.
 */
#ifndef MLO_UTIL_H
#define MLO_UTIL_H

#include <jansson.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* Allocate or abort. Never return NULL. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
void *xreallocarray(void *p, size_t n, size_t size);
/* Returns a heap copy of s (or of its first n bytes, NUL-terminated); free with free(). */
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* Returns a heap string printed like printf; free with free(). */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

enum { LOG_LVL_ERROR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };
extern _Atomic int util_log_level;
void util_log(int lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_error(...) util_log(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warnx(...) do { if (util_log_level >= LOG_LVL_WARN) util_log(LOG_LVL_WARN, __VA_ARGS__); } while (0)
#define log_info(...) do { if (util_log_level >= LOG_LVL_INFO) util_log(LOG_LVL_INFO, __VA_ARGS__); } while (0)
#define log_debug(...) do { if (util_log_level >= LOG_LVL_DEBUG) util_log(LOG_LVL_DEBUG, __VA_ARGS__); } while (0)

/* Parses "6G", "512M", "24GiB", "1.5g", "1000000" (bytes; K/M/G/T are binary).
 * Returns 0 and sets *out, or -1 on anything else. */
int util_parse_size(const char *s, uint64_t *out);
/* Parses a whole base-10 integer in [min,max]. Returns 0 or -1. */
int util_parse_int(const char *s, long long min, long long max, long long *out);
/* Formats bytes as "4.58 GiB" into buf (borrowed, returned for convenience). */
const char *util_fmt_size(uint64_t bytes, char *buf, size_t len);

/* Milliseconds on the monotonic clock: only differences mean anything (timeouts, TTL,
 * ages); never a time of day. */
uint64_t util_mono_ms(void);

/* A new JSON string of s (or of its first n bytes); bytes that do not form UTF-8
 * become '?', since paths and names come from disk. */
json_t *util_json_str(const char *s);
json_t *util_json_strn(const char *s, size_t n);

#endif
