/*
 * daemonutil: driving a running mloffloadd from a test: JSON requests on loopback,
 * polling until a condition holds, the port the daemon chose from its log line.
 */
#ifndef MLO_DAEMONUTIL_H
#define MLO_DAEMONUTIL_H

#include <jansson.h>
#include <stdint.h>

#include "testutil.h"

/* Sends a request to 127.0.0.1:port; returns the JSON body (new, or NULL) and the
 * status in *status (0 when nothing answered). */
json_t *du_req(int port, const char *method, const char *path, const char *body,
    int *status);
/* GET that must answer 200 with JSON (fails the test otherwise). */
json_t *du_get(int port, const char *path);
/* Polls GET path until pred(j, arg) holds; fails the test after 60 s. New body. */
json_t *du_poll(int port, const char *path, int (*pred)(json_t *, void *), void *arg);
/* What du_start runs: mloffloadd on 127.0.0.1, on a port the system picks, over one
 * models folder, with what the tests share (no reserve, no rescans, no idle unloads, no
 * remote llama-server), then the test's own flags. Strings are borrowed. */
struct du_daemon {
	const char *bin;          /* mloffloadd */
	const char *models;       /* --models-dir */
	const char *state;        /* --state-dir */
	const char *llama_bin;    /* --llama-server */
	const char *nvml;         /* --nvml-lib; NULL: none that loads (CPU only) */
	const char *ollama_url;   /* --ollama-url; NULL: "" (none) */
	char *const *extra;       /* more flags, NULL-terminated; NULL: none */
};
/* Starts d with its log in the test folder's logname; returns its port once it listens.
 * Fails the test if it does not start. Stop it with du_stop. */
int du_start(struct tu_proc *p, const struct du_daemon *d, const char *logname);
/* A du_poll predicate: the body's "models" has at least *(size_t *)min entries. */
int du_has_models(json_t *j, void *min);
/* Waits for "listening on http://HOST:PORT" in p's log; returns PORT. */
int du_port(const struct tu_proc *p);
/* Writes the generated model shape (shapes.h) to path: quant NULL for the shape's own,
 * fill 1 random weights, 0 a sparse hole, -1 the shape's default. Fails the test on an
 * error. */
void du_gen(const char *shape, const char *path, const char *quant, int fill, uint64_t seed);
/* Writes the fake NVML's state file at path: one GPU of total bytes, used in use. */
void du_fake_gpu(const char *path, uint64_t total, uint64_t used);
/* Stops a daemon: SIGTERM, its exit awaited (30 s at most), then its group killed. */
/* Stops it with SIGTERM (SIGKILL after 30 s). Returns 0 when it exited with status 0,
 * else -1, saying how it ended on stderr (a crash at shutdown is a bug). */
int du_stop(struct tu_proc *p);
/* How many du_stop calls found a daemon that did not end cleanly. A test's main adds it
 * to its result: cmocka does not count a failing teardown. */
int du_stops_failed(void);
/* A JSON value at a dotted path ("devices.0.id", array indexes as numbers), borrowed. */
json_t *du_at(json_t *j, const char *path);

#endif
