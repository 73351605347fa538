/*
 * apikey: API keys shared by the daemon (which checks them, guard.c) and the client
 * (which sends one): reading a key file, checking a key's shape, comparing in constant
 * time, and making random keys for the llama-server children. No libevent here, so
 * that both binaries link it.
 */
#ifndef MLO_APIKEY_H
#define MLO_APIKEY_H

#include <stddef.h>

#define APIKEY_MIN 16          /* shorter is not a secret */
#define APIKEY_MAX 255         /* bytes; longer keys are refused */
#define APIKEY_MAX_KEYS 64     /* keys in one set (file plus environment) */
#define APIKEY_FILE_MAX 65536  /* bytes of a key file */
#define APIKEY_RANDOM_HEX 64   /* characters of apikey_random's keys (32 random bytes) */

struct apikey_set;

/* An empty set; free with apikey_free. */
struct apikey_set *apikey_new(void);
/* Wipes the keys and frees s (NULL is a no-op). */
void apikey_free(struct apikey_set *s);
/* Keys held. */
size_t apikey_count(const struct apikey_set *s);
/* Key i (< apikey_count), NUL-terminated, borrowed until s is freed. */
const char *apikey_get(const struct apikey_set *s, size_t i);
/* Adds key (printable ASCII without spaces, APIKEY_MIN..APIKEY_MAX bytes), copied.
 * what names it in the message. Returns 0, or -1 with err (on error nothing changes). */
int apikey_add(struct apikey_set *s, const char *key, const char *what, char *err,
    size_t errlen);
/* Adds the keys of the file at path: one a line, blank lines and lines starting with
 * '#' skipped, spaces around a key ignored. The file must be a regular file that
 * "other" can neither read nor write (mode & 0007 == 0) and must hold a key. Returns
 * 0, or -1 with "PATH: why" (or "PATH:LINE: why") in err; on error s may hold some of
 * the file's keys (use a fresh set and drop it). */
int apikey_read_file(struct apikey_set *s, const char *path, char *err, size_t errlen);
/* 1 when key (len bytes, not NUL-terminated) is one of s's keys. The time taken
 * depends on neither the keys held nor where key differs from them: every key is
 * compared over APIKEY_MAX + 1 bytes, without an early exit. */
int apikey_match(const struct apikey_set *s, const char *key, size_t len);
/* Writes APIKEY_RANDOM_HEX hex digits of getrandom(2) bytes and a NUL to out
 * (len > APIKEY_RANDOM_HEX). Returns 0 or -1 (errno set). */
int apikey_random(char *out, size_t len);

#endif
