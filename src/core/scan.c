/*
 * scan: walks the model folders and describes every GGUF file in them (see scan.h).
 *
 * It runs in four passes over a flat list of candidates, so that every decision can
 * see the whole folder: walk (collect *.gguf files, refuse what resolves outside the
 * folders), group (split parts under their part one, one file per inode), classify
 * (model or projector; a known file whose size and mtime did not change is not read)
 * and describe (header, estimate, fit on each device). Folders are always walked by
 * their resolved path, so only the last component of an item's path can be a symlink;
 * a symlinked file keeps its own name in the path (a Hugging Face cache links
 * "model.gguf" to a blob named by its hash). Walking is bounded in depth and in files.
 *
 * Reading the files (classify and describe) is in scan_info.c; what the two files
 * share is in scan_int.h.
 */
#include "scan_int.h"
#include "gguf.h"
#include "util.h"

#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define SCAN_MAX_DEPTH 16
#define SCAN_MAX_FILES 100000
#define SCAN_OUTSIDE "outside the model folders"

static int64_t stat_mtime_ns(const struct stat *st)
{
	return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

static int has_gguf_ext(const char *name)
{
	size_t n = strlen(name);
	return n > 5 && strcasecmp(name + n - 5, ".gguf") == 0;
}

int scan_under(const char *path, const char *dir)
{
	size_t n = strlen(dir);
	if (n == 1 && dir[0] == '/')
		return path[0] == '/';
	return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

int scan_under_any(const char *path, char *const *dirs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (dirs[i] != NULL && scan_under(path, dirs[i]))
			return 1;
	return 0;
}

static char *join(const char *dir, const char *name)
{
	if (strcmp(dir, "/") == 0)
		return xasprintf("/%s", name);
	return xasprintf("%s/%s", dir, name);
}

void scan_add_item(struct walk *w, char *path, uint64_t size, int64_t mtime_ns,
    char *error, json_t *info, int unchanged)
{
	struct scan_result *r = w->r;
	if (r->n_items == w->cap_items) {
		w->cap_items = w->cap_items ? w->cap_items * 2 : 16;
		r->items = xreallocarray(r->items, w->cap_items, sizeof *r->items);
	}
	struct scan_item *it = &r->items[r->n_items++];
	it->path = path;
	it->size = size;
	it->mtime_ns = mtime_ns;
	it->error = error;
	it->info = info;
	it->unchanged = unchanged;
}

static void add_skipped(struct walk *w, const char *dir, const char *why)
{
	struct scan_result *r = w->r;
	log_debug("scan: %s: not walked: %s", dir, why);
	if (r->n_skipped == w->cap_skipped) {
		w->cap_skipped = w->cap_skipped ? w->cap_skipped * 2 : 8;
		r->skipped = xreallocarray(r->skipped, w->cap_skipped, sizeof *r->skipped);
	}
	r->skipped[r->n_skipped++] = xstrdup(dir);
}

/* Parses NAME-0000K-of-0000N.gguf (five digits each, as llama.cpp writes them). */
static void split_name(struct cand *c)
{
	const char *name = c->path + c->dirlen + 1;
	size_t n = strlen(name) - 5;   /* less ".gguf" */
	c->stemlen = n;
	if (n <= 15)
		return;
	const char *s = name + n - 15; /* "-00001-of-00003" */
	int k = 0, cnt = 0;
	if (s[0] != '-' || strncmp(s + 6, "-of-", 4) != 0)
		return;
	for (int i = 1; i <= 5; i++) {
		if (s[i] < '0' || s[i] > '9' || s[i + 9] < '0' || s[i + 9] > '9')
			return;
		k = k * 10 + (s[i] - '0');
		cnt = cnt * 10 + (s[i + 9] - '0');
	}
	if (cnt < 2 || k < 1 || k > cnt)
		return;
	c->part = k;
	c->nparts = cnt;
	c->stemlen = n - 15;
}

/* Counts a *.gguf file against max_files. Returns -1 when the limit is reached. */
static int count_file(struct walk *w)
{
	if (w->n_files >= w->max_files) {
		w->r->truncated = 1;
		return -1;
	}
	w->n_files++;
	return 0;
}

static void add_cand(struct walk *w, char *path, size_t dirlen, const struct stat *st,
    int is_link)
{
	if (w->n_c == w->cap_c) {
		w->cap_c = w->cap_c ? w->cap_c * 2 : 16;
		w->c = xreallocarray(w->c, w->cap_c, sizeof *w->c);
	}
	struct cand *c = &w->c[w->n_c++];
	memset(c, 0, sizeof *c);
	c->path = path;
	c->dirlen = dirlen;
	c->size = (uint64_t)st->st_size;
	c->mtime_ns = stat_mtime_ns(st);
	c->dev = st->st_dev;
	c->ino = st->st_ino;
	c->is_link = is_link;
	split_name(c);
}

static int seen_dir(struct walk *w, const struct stat *st)
{
	for (size_t i = 0; i < w->n_seen; i++)
		if (w->seen[i].dev == st->st_dev && w->seen[i].ino == st->st_ino)
			return 1;
	if (w->n_seen == w->cap_seen) {
		w->cap_seen = w->cap_seen ? w->cap_seen * 2 : 16;
		w->seen = xreallocarray(w->seen, w->cap_seen, sizeof *w->seen);
	}
	w->seen[w->n_seen].dev = st->st_dev;
	w->seen[w->n_seen].ino = st->st_ino;
	w->n_seen++;
	return 0;
}

static int walk_dir(struct walk *w, const char *dir, int depth);

/* One directory entry. Returns -1 when the walk must stop (max_files). */
static int walk_entry(struct walk *w, const char *dir, const struct dirent *de, int depth)
{
	const char *name = de->d_name;
	int gguf = has_gguf_ext(name);
	unsigned char type = de->d_type;
	struct stat st;
	if (type != DT_DIR && type != DT_REG && type != DT_LNK && type != DT_UNKNOWN &&
	    !gguf)
		return 0;
	if (type == DT_REG && !gguf)
		return 0;
	char *path = join(dir, name);
	size_t dirlen = strlen(path) - strlen(name) - 1;
	if (type == DT_UNKNOWN) {
		if (lstat(path, &st) < 0) {
			if (gguf && count_file(w) == 0) {
				scan_add_item(w, path, 0, 0, xstrdup(strerror(errno)), NULL, 0);
				return 0;
			}
			free(path);
			return gguf ? -1 : 0;
		}
		type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISLNK(st.st_mode) ? DT_LNK :
		    S_ISREG(st.st_mode) ? DT_REG : DT_UNKNOWN;
		if (type != DT_DIR && type != DT_LNK && !gguf) {
			free(path);
			return 0;
		}
	}
	if (type == DT_DIR) {
		int rc = 0;
		if (depth + 1 > SCAN_MAX_DEPTH)
			add_skipped(w, path, "too deep");
		else
			rc = walk_dir(w, path, depth + 1);
		free(path);
		return rc;
	}
	if (type == DT_LNK) {
		char rp[PATH_MAX];
		if (stat(path, &st) < 0 || realpath(path, rp) == NULL) {
			/* a dangling link: an error only when it names a model */
			if (gguf && count_file(w) == 0) {
				scan_add_item(w, path, 0, 0, xstrdup(strerror(errno)), NULL, 0);
				return 0;
			}
			free(path);
			return gguf ? -1 : 0;
		}
		if (S_ISDIR(st.st_mode)) {
			int rc = 0;
			/* folders are walked by their resolved path, and never out */
			if (!scan_under_any(rp, w->roots, w->n_roots))
				log_debug("scan: %s: links outside the model folders", path);
			else if (depth + 1 > SCAN_MAX_DEPTH)
				add_skipped(w, rp, "too deep");
			else
				rc = walk_dir(w, rp, depth + 1);
			free(path);
			return rc;
		}
		if (!gguf) {
			free(path);
			return 0;
		}
		if (count_file(w) < 0) {
			free(path);
			return -1;
		}
		if (!scan_under_any(rp, w->roots, w->n_roots)) {
			/* nothing of the target is read, its size and time included */
			scan_add_item(w, path, 0, 0,
			    xasprintf(SCAN_OUTSIDE " (it links to %s)", rp), NULL, 0);
			return 0;
		}
		if (!S_ISREG(st.st_mode)) {
			scan_add_item(w, path, 0, 0, xstrdup("not a regular file"), NULL, 0);
			return 0;
		}
		add_cand(w, path, dirlen, &st, 1);
		return 0;
	}
	/* a regular file (or something else) named *.gguf */
	if (count_file(w) < 0) {
		free(path);
		return -1;
	}
	if (stat(path, &st) < 0) {
		scan_add_item(w, path, 0, 0, xstrdup(strerror(errno)), NULL, 0);
		return 0;
	}
	if (!S_ISREG(st.st_mode)) {
		scan_add_item(w, path, 0, 0, xstrdup("not a regular file"), NULL, 0);
		return 0;
	}
	add_cand(w, path, dirlen, &st, 0);
	return 0;
}

/* Walks dir (resolved, inside the roots). Returns -1 when the walk must stop, 0
 * otherwise; a folder that cannot be read is recorded as skipped. */
static int walk_dir(struct walk *w, const char *dir, int depth)
{
	struct stat st;
	if (stat(dir, &st) < 0) {
		add_skipped(w, dir, strerror(errno));
		return 0;
	}
	if (seen_dir(w, &st))
		return 0;
	DIR *d = opendir(dir);
	if (d == NULL) {
		add_skipped(w, dir, strerror(errno));
		return 0;
	}
	int rc = 0;
	struct dirent *de;
	while (rc == 0 && (de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		rc = walk_entry(w, dir, de, depth);
	}
	closedir(d);
	return rc;
}

static int cand_cmp(const void *a, const void *b)
{
	return strcmp(((const struct cand *)a)->path, ((const struct cand *)b)->path);
}

/* Orders candidates by inode, the real file before links, then by path. */
static int inode_cmp(const void *a, const void *b)
{
	const struct cand *x = *(const struct cand *const *)a;
	const struct cand *y = *(const struct cand *const *)b;
	if (x->dev != y->dev)
		return x->dev < y->dev ? -1 : 1;
	if (x->ino != y->ino)
		return x->ino < y->ino ? -1 : 1;
	if (x->is_link != y->is_link)
		return x->is_link - y->is_link;
	return strcmp(x->path, y->path);
}

static int item_cmp(const void *a, const void *b)
{
	return strcmp(((const struct scan_item *)a)->path,
	    ((const struct scan_item *)b)->path);
}

static struct cand *find_cand(struct walk *w, const char *path)
{
	struct cand key;
	key.path = (char *)path;
	return bsearch(&key, w->c, w->n_c, sizeof *w->c, cand_cmp);
}

/* Two names of one file (links, hard links): the real file's path is kept. */
static void dedup(struct walk *w)
{
	if (w->n_c < 2)
		return;
	struct cand **v = xcalloc(w->n_c, sizeof *v);
	for (size_t i = 0; i < w->n_c; i++)
		v[i] = &w->c[i];
	qsort(v, w->n_c, sizeof *v, inode_cmp);
	for (size_t i = 1; i < w->n_c; i++)
		if (v[i]->dev == v[i - 1]->dev && v[i]->ino == v[i - 1]->ino)
			v[i]->kind = C_DUP;
	free(v);
}

/* Gathers the parts of each split model under its part one (size summed, newest
 * mtime); a missing part makes part one an error, a part without its part one is one. */
static void group_splits(struct walk *w)
{
	for (size_t i = 0; i < w->n_c; i++) {
		struct cand *c = &w->c[i];
		if (c->kind != C_MODEL || c->part != 1)
			continue;
		const char *ext = c->path + strlen(c->path) - 5;
		for (int k = 2; k <= c->nparts; k++) {
			char *pp = xasprintf("%.*s-%05d-of-%05d%s",
			    (int)(c->dirlen + 1 + c->stemlen), c->path, k, c->nparts, ext);
			struct cand *p = find_cand(w, pp);
			if (p == NULL || p->kind == C_DUP) {
				if (c->error == NULL)
					c->error = xasprintf("part %d of %d of this split model (%s) "
					    "is missing", k, c->nparts, pp + c->dirlen + 1);
				free(pp);
				continue;
			}
			free(pp);
			p->kind = C_PART;
			c->size += p->size;
			if (p->mtime_ns > c->mtime_ns)
				c->mtime_ns = p->mtime_ns;
		}
		if (c->nparts > GGUF_MAX_PARTS && c->error == NULL)
			c->error = xasprintf("a split model of %d parts (at most %d)", c->nparts,
			    GGUF_MAX_PARTS);
		if (c->error != NULL)
			c->kind = C_ERROR;
	}
	for (size_t i = 0; i < w->n_c; i++) {
		struct cand *c = &w->c[i];
		if (c->kind != C_MODEL || c->part <= 1)
			continue;
		c->kind = C_ERROR;
		c->error = xasprintf("part %d of %d of a split model whose part 1 "
		    "(%.*s-00001-of-%05d%s) is missing", c->part, c->nparts,
		    (int)c->stemlen, c->path + c->dirlen + 1, c->nparts,
		    c->path + strlen(c->path) - 5);
	}
}

/* Lower-case letters and digits of a file stem without the word "mmproj". */
static void norm_stem(const char *s, size_t n, char *out, size_t len)
{
	size_t j = 0;
	for (size_t i = 0; i < n && j + 1 < len; i++) {
		if (i + 6 <= n && strncasecmp(s + i, "mmproj", 6) == 0) {
			i += 5;
			continue;
		}
		char ch = s[i];
		if (ch >= 'A' && ch <= 'Z')
			ch = (char)(ch - 'A' + 'a');
		if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9'))
			out[j++] = ch;
	}
	out[j] = '\0';
}

/* Orders models and projectors by folder, then by name. */
static int dir_cmp(const void *a, const void *b)
{
	const struct cand *x = *(const struct cand *const *)a;
	const struct cand *y = *(const struct cand *const *)b;
	size_t n = x->dirlen < y->dirlen ? x->dirlen : y->dirlen;
	int c = memcmp(x->path, y->path, n);
	if (c != 0)
		return c;
	if (x->dirlen != y->dirlen)
		return x->dirlen < y->dirlen ? -1 : 1;
	return strcmp(x->path + x->dirlen, y->path + y->dirlen);
}

static int same_dir(const struct cand *x, const struct cand *y)
{
	return x->dirlen == y->dirlen && memcmp(x->path, y->path, x->dirlen) == 0;
}

/* The projector among v[0..n) whose name shares the longest start with m's. */
static const struct cand *best_projector(const struct cand *m, struct cand **v, size_t n)
{
	char ms[256], ps[256];
	size_t best = 0;
	const struct cand *pick = NULL;
	norm_stem(m->path + m->dirlen + 1, m->stemlen, ms, sizeof ms);
	for (size_t q = 0; q < n; q++) {
		if (v[q]->kind != C_PROJ)
			continue;
		norm_stem(v[q]->path + v[q]->dirlen + 1, v[q]->stemlen, ps, sizeof ps);
		size_t l = 0;
		while (ms[l] != '\0' && ms[l] == ps[l])
			l++;
		if (l >= 3 && l > best) {
			best = l;
			pick = v[q];
		}
	}
	return pick;
}

/*
 * Links projectors to the models of their folder: one projector goes with every model
 * there; with several, each model takes the one whose name shares the longest start
 * with its own (knowingly simple; at least three letters, else none).
 */
static void link_projectors(struct walk *w)
{
	struct cand **v = xcalloc(w->n_c, sizeof *v);
	size_t n = 0;
	for (size_t i = 0; i < w->n_c; i++)
		if (w->c[i].kind == C_MODEL || w->c[i].kind == C_PROJ)
			v[n++] = &w->c[i];
	if (n > 0)
		qsort(v, n, sizeof *v, dir_cmp);
	for (size_t i = 0, j; i < n; i = j) {
		size_t n_proj = 0;
		const struct cand *one = NULL;
		for (j = i; j < n && same_dir(v[i], v[j]); j++) {
			if (v[j]->kind == C_PROJ) {
				n_proj++;
				one = v[j];
			}
		}
		for (size_t k = i; k < j && n_proj > 0; k++) {
			if (v[k]->kind == C_MODEL)
				v[k]->proj = n_proj == 1 ? one : best_projector(v[k], v + i, j - i);
		}
	}
	free(v);
}

static void resolve_roots(struct walk *w)
{
	const struct scan_opts *o = w->o;
	struct scan_result *r = w->r;
	w->roots = xcalloc(o->n_dirs, sizeof *w->roots);
	for (size_t i = 0; i < o->n_dirs; i++) {
		char rp[PATH_MAX];
		struct stat st;
		const char *why = NULL;
		if (o->dirs[i] == NULL || o->dirs[i][0] == '\0')
			why = "no folder named";
		else if (realpath(o->dirs[i], rp) == NULL)
			why = strerror(errno);
		else if (stat(rp, &st) < 0)
			why = strerror(errno);
		else if (!S_ISDIR(st.st_mode))
			why = "not a folder";
		if (why != NULL) {
			r->n_dirs_missing++;
			if (r->dir_error == NULL)
				r->dir_error = xasprintf("%s: %s", o->dirs[i] ? o->dirs[i] : "(null)",
				    why);
			continue;
		}
		int dup = 0;
		for (size_t k = 0; k < w->n_roots; k++)
			dup |= strcmp(w->roots[k], rp) == 0;
		if (!dup)
			w->roots[w->n_roots++] = xstrdup(rp);
	}
}

struct scan_result *scan_run(const struct scan_opts *o)
{
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	struct scan_result *r = xcalloc(1, sizeof *r);
	struct walk w;
	memset(&w, 0, sizeof w);
	w.o = o;
	w.r = r;
	w.max_files = o->max_files ? o->max_files : SCAN_MAX_FILES;
	resolve_roots(&w);
	r->configured = xcalloc(o->n_dirs ? o->n_dirs : 1, sizeof *r->configured);
	for (size_t i = 0; i < o->n_dirs; i++)
		if (o->dirs[i] != NULL)
			r->configured[r->n_configured++] = xstrdup(o->dirs[i]);
	r->dirs = xcalloc(w.n_roots, sizeof *r->dirs);
	for (size_t i = 0; i < w.n_roots; i++) {
		size_t before = r->n_skipped;
		if (walk_dir(&w, w.roots[i], 0) < 0) {
			r->dirs[r->n_dirs++] = xstrdup(w.roots[i]);
			break;
		}
		if (r->n_skipped > before && strcmp(r->skipped[before], w.roots[i]) == 0) {
			/* the folder itself could not be read */
			r->n_dirs_missing++;
			if (r->dir_error == NULL)
				r->dir_error = xasprintf("%s: cannot be read", w.roots[i]);
			continue;
		}
		r->dirs[r->n_dirs++] = xstrdup(w.roots[i]);
	}
	if (w.n_c > 0)
		qsort(w.c, w.n_c, sizeof *w.c, cand_cmp);
	dedup(&w);
	group_splits(&w);
	for (size_t i = 0, next = 0; i < w.n_c; i++) {
		if (w.c[i].kind != C_MODEL)
			continue;
		/* the next file's header comes from disk while this one is parsed */
		for (next = next > i ? next : i + 1; next < w.n_c; next++) {
			if (w.c[next].kind == C_MODEL) {
				scan_prefetch(&w, &w.c[next]);
				break;
			}
		}
		scan_classify(&w, &w.c[i]);
	}
	link_projectors(&w);
	scan_describe_all(&w);
	if (r->n_items > 0)
		qsort(r->items, r->n_items, sizeof *r->items, item_cmp);

	for (size_t i = 0; i < w.n_c; i++) {
		free(w.c[i].path);
		free(w.c[i].error);
		json_decref(w.c[i].info);
		free(w.c[i].info_error);
	}
	free(w.c);
	free(w.seen);
	gguf_buf_free(&w.buf);
	for (size_t i = 0; i < w.n_roots; i++)
		free(w.roots[i]);
	free(w.roots);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	r->ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	return r;
}

void scan_free(struct scan_result *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->n_items; i++) {
		free(r->items[i].path);
		free(r->items[i].error);
		json_decref(r->items[i].info);
	}
	free(r->items);
	free(r->dir_error);
	for (size_t i = 0; i < r->n_dirs; i++)
		free(r->dirs[i]);
	free(r->dirs);
	for (size_t i = 0; i < r->n_skipped; i++)
		free(r->skipped[i]);
	free(r->skipped);
	for (size_t i = 0; i < r->n_configured; i++)
		free(r->configured[i]);
	free(r->configured);
	free(r);
}
