/*
 * scheduler_ollama: Ollama's models ("ollama:NAME") loaded and unloaded through
 * Ollama's API (ollama.c); Ollama places them itself.
 */
#include "config.h"
#include "discover.h"
#include "ollama.h"
#include "scheduler_int.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

/* ---- Ollama's models: loaded and unloaded through its API ---- */

struct oreq {
	struct sched *s;
	char *id;
	struct sched_reply reply;
	int unload;
};

static void ollama_done(void *arg, int status, const char *msg)
{
	struct oreq *o = arg;
	if (status == 200) {
		sched_emit(o->s, o->unload ? "model.unloaded" : "model.loaded", json_pack("{s:s,s:s}",
		    "model", o->id, "backend", "ollama"));
		sched_tell(o->reply, 200, json_pack("{s:s,s:s,s:s}", "model", o->id, "backend",
		    "ollama", "state", o->unload ? "unloaded" : "ready"));
		if (o->s->env.disc != NULL)
			discover_poll(o->s->env.disc); /* /api/ps now shows it, with its VRAM */
	} else {
		if (!o->unload)
			sched_emit(o->s, "model.failed", json_pack("{s:s,s:s,s:s}", "model", o->id,
			    "backend", "ollama", "error", msg));
		sched_tell_error(o->reply, status == 404 ? 404 : 502, status == 404 ?
		    "model_not_found" : "backend_failed", "Ollama: %s", msg);
	}
	free(o->id);
	free(o);
}

/* POST /load or /unload of "ollama:NAME". Ollama manages its own memory; a load keeps
 * the model resident for ttl (the daemon's idle TTL by default, pinned: forever). */
void sched_ollama_request(struct sched *s, const char *id, const struct sched_opts *opt,
    int unload, struct sched_reply r)
{
	const char *url = s->cfg->ollama_url;
	if (url == NULL || *url == '\0') {
		sched_tell_error(r, 404, "model_not_found", "Ollama is not configured");
		return;
	}
	long ka = unload ? 0 : opt->pin ? -1 : opt->ttl_s >= 0 ? opt->ttl_s :
	    (long)s->cfg->idle_ttl_s;
	if (!unload && ka == 0)
		ka = -1;
	struct oreq *o = xcalloc(1, sizeof *o);
	o->s = s;
	o->id = xstrdup(id);
	o->reply = r;
	o->unload = unload;
	if (ollama_keep_alive(s->env.base, url, id + 7, ka, ollama_done, o) < 0) {
		sched_tell_error(r, 502, "backend_failed", "Ollama URL %s is not usable", url);
		free(o->id);
		free(o);
	}
}
