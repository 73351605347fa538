/*
 * llama: one llama-server child serving one model, on the daemon's loop. It is
 * started with the arguments of the model's plan on a port of its own, supervised by
 * child.c (own process group, output captured), and is ready when its log says it
 * listens and GET /health answers 200. The buffer sizes llama.cpp reports while
 * loading ("... model buffer size = X MiB", KV, compute) are collected per device, so
 * the daemon can record measured memory beside the plan. Each child gets a random API
 * key of its own (in its environment, never on its command line), so that other local
 * users cannot use it past the daemon.
 */
#ifndef MLO_LLAMA_H
#define MLO_LLAMA_H

#include <jansson.h>
#include <sys/types.h>

struct event_base;
struct llama;

struct llama_cb {
	void (*ready)(void *arg);
	/* The child is gone (status as waitpid's, tail: its last log lines, borrowed). The
	 * instance may be freed from here. */
	void (*exited)(void *arg, int status, const char *tail);
	void *arg;
};

/* Starts server (the llama-server binary) on 127.0.0.1 with model, alias and the
 * plan's args (NULL-terminated, borrowed), logging to log_path. Returns the instance
 * or NULL with err. */
struct llama *llama_start(struct event_base *base, const char *server, const char *model,
    const char *alias, char *const *args, const char *log_path, const struct llama_cb *cb,
    char *err, size_t errlen);
/* SIGTERM, then SIGKILL after grace_ms. */
void llama_stop(struct llama *l, int grace_ms);
void llama_kill(struct llama *l);
int llama_port(const struct llama *l);
/* The child's API key (hex, borrowed): llama-server answers 401 to requests without
 * "Authorization: Bearer KEY", except GET /health. */
const char *llama_key(const struct llama *l);
pid_t llama_pid(const struct llama *l);
/* What llama.cpp reported allocating: a new object {"DEVICE": {"model_bytes",
 * "kv_bytes", "compute_bytes"}, ...}. */
json_t *llama_measured(const struct llama *l);
/* Frees; a running child is killed first (never an orphan). */
void llama_free(struct llama *l);
/* The devices the llama-server binary server offers, as its --list-devices prints them
 * ("CUDA0,CUDA1"; "" when it has none but the CPU), into out. Blocking (a few hundred
 * ms; 10 s at most, then the probe is killed). 0, or -1 when it could not say. */
int llama_devices(const char *server, char *out, size_t len);

#endif
