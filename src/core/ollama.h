/*
 * ollama: loads and unloads models in a running Ollama through its HTTP API, on the
 * daemon's loop: POST /api/generate {"model": NAME, "keep_alive": SECONDS} with no
 * prompt loads a model (and keeps it that long; -1 forever), keep_alive 0 unloads it.
 * Ollama answers when it is done. Residency and VRAM are read by discover.c (/api/ps).
 */
#ifndef MLO_OLLAMA_H
#define MLO_OLLAMA_H

struct event_base;

/* Called once from the loop: status is the HTTP status (0 when nothing answered), msg
 * Ollama's error text or "" (borrowed). */
typedef void (*ollama_cb)(void *arg, int status, const char *msg);

/* Sends the request to url ("http://host:port"). Returns 0, or -1 when the URL is not
 * usable (then cb is never called). */
int ollama_keep_alive(struct event_base *base, const char *url, const char *name,
    long keep_alive_s, ollama_cb cb, void *arg);

#endif
