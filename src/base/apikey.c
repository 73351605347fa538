/*
 * apikey: see apikey.h. Keys are kept zero-padded in fixed slots of APIKEY_MAX + 1
 * bytes so that a comparison always reads the same number of bytes: the time of
 * apikey_match leaks neither a stored key's length nor the position of a difference.
 * The memory is wiped (explicit_bzero) when a set is freed.
 */
#include "apikey.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

struct apikey_slot {
	unsigned char k[APIKEY_MAX + 1];
	size_t len;
};

struct apikey_set {
	size_t n;
	struct apikey_slot keys[APIKEY_MAX_KEYS];
};

struct apikey_set *apikey_new(void)
{
	return xcalloc(1, sizeof(struct apikey_set));
}

void apikey_free(struct apikey_set *s)
{
	if (s == NULL)
		return;
	explicit_bzero(s, sizeof *s);
	free(s);
}

size_t apikey_count(const struct apikey_set *s)
{
	return s->n;
}

const char *apikey_get(const struct apikey_set *s, size_t i)
{
	return (const char *)s->keys[i].k;
}

int apikey_add(struct apikey_set *s, const char *key, const char *what, char *err,
    size_t errlen)
{
	size_t len = strlen(key);
	if (len < APIKEY_MIN || len > APIKEY_MAX) {
		snprintf(err, errlen, "%s: a key must have %d to %d characters (this one has %zu)",
		    what, APIKEY_MIN, APIKEY_MAX, len);
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		if (key[i] <= ' ' || key[i] > '~') {
			snprintf(err, errlen, "%s: a key is printable ASCII without spaces", what);
			return -1;
		}
	}
	if (s->n == APIKEY_MAX_KEYS) {
		snprintf(err, errlen, "%s: more than %d keys", what, APIKEY_MAX_KEYS);
		return -1;
	}
	memcpy(s->keys[s->n].k, key, len);
	s->keys[s->n].len = len;
	s->n++;
	return 0;
}

/* Reads the whole file at path (checked as apikey_read_file says) into a heap string. */
static char *read_key_file(const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	struct stat st;
	char *buf = NULL;
	if (fd < 0 || fstat(fd, &st) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		goto out;
	}
	if (st.st_mode & 0007) {
		snprintf(err, errlen, "%s: other users may read or write it (mode %04o): "
		    "chmod o-rwx %s", path, (unsigned)(st.st_mode & 07777), path);
		goto out;
	}
	if (st.st_size > APIKEY_FILE_MAX) {
		snprintf(err, errlen, "%s: larger than %d bytes", path, APIKEY_FILE_MAX);
		goto out;
	}
	buf = xmalloc((size_t)st.st_size + 1);
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	buf[got] = '\0';
	if (memchr(buf, '\0', got) != NULL) {
		snprintf(err, errlen, "%s: holds a NUL byte", path);
		explicit_bzero(buf, got);
		free(buf);
		buf = NULL;
	}
out:
	if (fd >= 0)
		close(fd);
	return buf;
}

int apikey_read_file(struct apikey_set *s, const char *path, char *err, size_t errlen)
{
	char *buf = read_key_file(path, err, errlen);
	if (buf == NULL)
		return -1;
	size_t before = s->n, buflen = strlen(buf);
	int rc = 0, lineno = 0;
	/* line by line, by hand: strtok_r would skip empty lines and the numbers */
	for (char *line = buf, *nl; rc == 0 && line != NULL; line = nl) {
		nl = strchr(line, '\n');
		if (nl != NULL)
			*nl++ = '\0';
		lineno++;
		while (isspace((unsigned char)*line))
			line++;
		char *e = line + strlen(line);
		while (e > line && isspace((unsigned char)e[-1]))
			*--e = '\0';
		if (*line == '\0' || *line == '#')
			continue;
		char what[600];
		snprintf(what, sizeof what, "%s:%d", path, lineno);
		rc = apikey_add(s, line, what, err, errlen);
	}
	explicit_bzero(buf, buflen);
	free(buf);
	if (rc == 0 && s->n == before) {
		snprintf(err, errlen, "%s: holds no key (one a line, # comments)", path);
		rc = -1;
	}
	return rc;
}

int apikey_match(const struct apikey_set *s, const char *key, size_t len)
{
	/* the candidate, zero-padded to a slot; its own length may show in the copy's
	 * time, which tells the caller only what it sent */
	struct apikey_slot c;
	memset(&c, 0, sizeof c);
	unsigned too_long = len > APIKEY_MAX;
	c.len = too_long ? 0 : len;
	memcpy(c.k, key, c.len);
	unsigned found = 0;
	for (size_t i = 0; i < s->n; i++) {
		const struct apikey_slot *k = &s->keys[i];
		unsigned diff = (unsigned)(k->len ^ c.len);
		for (size_t j = 0; j < sizeof c.k; j++)
			diff |= (unsigned)(k->k[j] ^ c.k[j]);
		/* 1 when diff is 0, without a branch */
		found |= 1u & ((diff - 1u) >> (sizeof diff * 8 - 1));
	}
	explicit_bzero(&c, sizeof c);
	return (int)(found & (1u ^ too_long) & (s->n > 0));
}

int apikey_random(char *out, size_t len)
{
	unsigned char raw[APIKEY_RANDOM_HEX / 2];
	static const char hex[] = "0123456789abcdef";
	if (len <= APIKEY_RANDOM_HEX) {
		errno = EINVAL;
		return -1;
	}
	size_t got = 0;
	while (got < sizeof raw) {
		ssize_t r = getrandom(raw + got, sizeof raw - got, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		got += (size_t)r;
	}
	for (size_t i = 0; i < sizeof raw; i++) {
		out[2 * i] = hex[raw[i] >> 4];
		out[2 * i + 1] = hex[raw[i] & 15];
	}
	out[APIKEY_RANDOM_HEX] = '\0';
	explicit_bzero(raw, sizeof raw);
	return 0;
}
