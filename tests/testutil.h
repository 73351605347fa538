/*
 * testutil: helpers shared by the tests: a private temporary folder per test run
 * (removed at exit), paths of built binaries, of the cached llama.cpp and of the openai
 * npm package with the node that runs it.
 */
#ifndef MLO_TESTUTIL_H
#define MLO_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

/* A fresh folder for this test process, removed with its contents at exit. */
const char *tu_tmpdir(void);
/* Returns a heap path "tmpdir/name"; free(). */
char *tu_path(const char *name);
/* Folder of the cached llama.cpp build (MLOFFLOAD_LLAMA_DIR's parent layout), or NULL
 * when it is not there. Heap string; free(). */
char *tu_llama_root(void);
/* Folder of the installed openai npm package (scripts/setup-openai.sh prints it;
 * MLO_OPENAI_DIR, else the cache for the pinned version), for tests/openai_client.mjs,
 * or NULL when it is not installed. Heap string; free(). */
char *tu_openai_dir(void);
/* Folder of the installed @anthropic-ai/sdk npm package (scripts/setup-anthropic.sh;
 * MLO_ANTHROPIC_DIR, else the cache for the pinned version), or NULL. Heap string. */
char *tu_anthropic_dir(void);
/* The folder of an npm package that scripts/setup-npm.sh installed: $env, else folder in
 * the cache; NULL unless it holds node_modules/pkg. Heap string. */
char *tu_npm_dir(const char *env, const char *folder, const char *pkg);
/* The node executable (MLO_NODE, else the one CMake found, else PATH), or NULL.
 * Heap string; free(). */
char *tu_node(void);
/* Writes n bytes to path. Returns 0 or -1. */
int tu_write_file(const char *path, const void *p, size_t n);
/* Reads a whole file into a heap buffer with a NUL after its len bytes. NULL on error. */
uint8_t *tu_read_file(const char *path, size_t *len);
/* Runs a shell command, returns its exit status (or -1). */
int tu_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif

#include <sys/types.h>

/* A child process of a test, in its own process group, output to a log file. */
struct tu_proc {
	pid_t pid;
	char *log;
};
/* Starts argv[0] with argv, stdout and stderr to log (heap copy kept). Returns 0 or -1.
 * Every started child is killed at exit if the test did not stop it. */
int tu_spawn(struct tu_proc *p, char *const argv[], const char *log);
/* Waits until the log holds `needle` (returns 1), the child exits (0) or timeout_s
 * passes (-1). */
int tu_wait_log(const struct tu_proc *p, const char *needle, int timeout_s);
/* Waits (timeout_s) for `prefix` in p's log and returns the number right after it,
 * as a server prints the port it chose ("listening 4242"); fails the test on a
 * timeout or when no port in 1..65535 follows. */
int tu_log_port(const struct tu_proc *p, const char *prefix, int timeout_s);
/* Kills the child's process group (SIGKILL) and reaps it. */
void tu_stop(struct tu_proc *p);
/* A TCP port on 127.0.0.1 that was free a moment ago. */
int tu_free_port(void);
/* 1 if something accepts TCP connections on 127.0.0.1:port. */
int tu_port_open(int port);
/* Sends an HTTP/1.0 request to 127.0.0.1:port and returns the heap response (status
 * line, headers and body) or NULL. */
char *tu_http(int port, const char *method, const char *path, const char *body);
/* Sends req (a whole request, as it goes on the wire) to 127.0.0.1:port and returns
 * the heap response, read until the server closes, or NULL. */
char *tu_http_raw(int port, const char *req);
