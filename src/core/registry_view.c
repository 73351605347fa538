/*
 * registry_view: the answers the routes give about the catalog (GET /models, /status,
 * /metrics), built once per stored scan from the registry rather than per request.
 * It was daemon_refresh in daemon.c; it lives beside the registry so that the HTTP
 * layer reads a plain struct and knows nothing of the daemon (registry.h).
 */
#include "registry.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

void registry_view_refresh(struct registry_view *v, struct registry *r)
{
	json_t *all = registry_models(r), *m;
	size_t i, len = 0, cap = 4096;
	char *buf = xmalloc(cap);
	json_array_foreach(all, i, m) {
		char *s = json_dumps(m, JSON_COMPACT | JSON_PRESERVE_ORDER);
		size_t n = s ? strlen(s) : 0;
		while (len + n + 2 > cap)
			buf = xrealloc(buf, cap *= 2);
		if (len > 0)
			buf[len++] = ',';
		memcpy(buf + len, s, n);
		len += n;
		free(s);
	}
	buf[len] = '\0';
	json_decref(all);
	free(v->models_json);
	v->models_json = buf;
	json_decref(v->model_counts);
	v->model_counts = registry_state_counts(r);
	json_decref(v->last_scan);
	v->last_scan = registry_last_scan(r);
}

void registry_view_free(struct registry_view *v)
{
	free(v->models_json);
	json_decref(v->model_counts);
	json_decref(v->last_scan);
	v->models_json = NULL;
	v->model_counts = v->last_scan = NULL;
}
