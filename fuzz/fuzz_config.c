/*
 * fuzz_config: libFuzzer harness for the daemon's config parser (src/core/config.c). Each
 * input is parsed as an INI file from memory over the defaults, then checked with
 * config_validate, as `mloffloadd -n --config FILE` does. A rejected input must come
 * with one terminated line of error naming the input ("fuzz.conf:"); an accepted one
 * must leave every list within its cap and every string set. Both are freed, so the
 * sanitizers see any leak or overflow. Run it with fuzz/run.sh.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_config: invariant broken: %s\n", what);
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config c;
	char err[1024];
	memset(err, 'x', sizeof err);
	config_defaults(&c);
	int rc = config_parse_buf(&c, "fuzz.conf", (const char *)data, size, err, sizeof err);
	if (rc < 0) {
		check(memchr(err, '\0', sizeof err) != NULL, "error terminated");
		check(strncmp(err, "fuzz.conf:", 10) == 0, "error names the file");
		check(strchr(err, '\n') == NULL, "error is one line");
	} else {
		check(c.n_models_dirs <= CONFIG_MAX_DIRS && c.n_llama_urls <= CONFIG_MAX_URLS &&
		    c.n_webhooks <= CONFIG_MAX_URLS && c.n_exclusive <= CONFIG_MAX_URLS &&
		    c.n_aliases <= CONFIG_MAX_ALIASES, "lists within their caps");
		check(c.listen_host != NULL && c.state_dir != NULL && c.ollama_url != NULL &&
		    c.sysfs_root != NULL, "strings set");
		check(c.listen_port >= 0 && c.listen_port <= 65535, "port in range");
		if (config_validate(&c, err, sizeof err) < 0)
			check(memchr(err, '\0', sizeof err) != NULL, "validate error terminated");
	}
	config_free(&c);
	return 0;
}
