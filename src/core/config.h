/*
 * config: the daemon's settings, from defaults, an INI file (--config) and command-line
 * flags, in that order, each validated with a message naming the file and line or the
 * flag. See docs/daemon.md for every key.
 */
#ifndef MLO_CONFIG_H
#define MLO_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define CONFIG_MAX_DIRS 32
#define CONFIG_MAX_URLS 16
#define CONFIG_MAX_ALIASES 64
#define CONFIG_MAX_RPC 8

/* One rpc_device line: a ggml-rpc-server and the bytes plans may use there. llama.cpp
 * names the servers RPC0, RPC1, ... in the order of the lines. */
struct config_rpc {
	char addr[128];            /* "HOST:PORT" */
	uint64_t budget;
};

/* split: whether one model may be split over several devices (auto: only when no
 * device holds it alone). */
enum config_split { CONFIG_SPLIT_AUTO, CONFIG_SPLIT_NEVER };
#define CONFIG_MAX_GROUP 64        /* model ids in one exclusive group */
#define CONFIG_MAX_HOOK_EVENTS 16  /* event types of one webhook */

/* The list-valued keys whose values have a structure are parsed once, when the
 * configuration is read (at start and at SIGHUP), into these; nobody parses their
 * strings again where they are used. */

/* exclusive = "ID ID ..." (spaces or commas between): model ids never resident
 * together (the scheduler, scheduler_budget.c). */
struct config_group {
	char *ids[CONFIG_MAX_GROUP];
	size_t n_ids;
};
/* webhook = "URL" or "URL type,type,...": where events go, and which (notify.h). */
struct config_webhook {
	char *url;
	char *events[CONFIG_MAX_HOOK_EVENTS];  /* n_events 0: every type */
	size_t n_events;
};
/* alias = "NAME MODEL_ID": another name for a model on the /v1 routes (proxy.c). */
struct config_alias {
	char *name;
	char *id;
};

struct config {
	char *config_path;         /* NULL when no file was read */
	char *listen_host;
	int listen_port;
	char *state_dir;
	char *models_dirs[CONFIG_MAX_DIRS];
	size_t n_models_dirs;
	char *llama_server;        /* path of the llama-server binary (NULL: not set) */
	char *nvml_lib;            /* NULL: the usual dlopen names */
	char *sysfs_root;          /* "/sys"; tests point it at a fake tree */
	int log_level;             /* LOG_LVL_* of util.h */
	unsigned sample_interval_ms;
	unsigned history;          /* samples kept per device */
	unsigned rescan_interval_s; /* 0: only on request */
	unsigned discover_interval_s;
	unsigned scan_ctx;         /* context of the estimates in /models (0: the model's, max 8192) */
	uint64_t reserve;          /* bytes kept free on each device */
	uint64_t max_body;         /* request body cap */
	unsigned max_connections;  /* open client connections (0: 512, less under a low
	                            * descriptor limit) */
	unsigned header_timeout_s; /* a request's head must arrive within this */
	unsigned body_timeout_s;   /* and its body within this after the head */
	char *llama_urls[CONFIG_MAX_URLS];
	size_t n_llama_urls;
	char *ollama_url;          /* "" disables Ollama discovery */
	unsigned idle_ttl_s;       /* loaded models idle this long are unloaded (0: never) */
	struct config_webhook webhooks[CONFIG_MAX_URLS];
	size_t n_webhooks;
	struct config_group exclusive[CONFIG_MAX_URLS];
	size_t n_exclusive;
	struct config_rpc rpc_devices[CONFIG_MAX_RPC]; /* rpc_device lines, parsed once */
	size_t n_rpc_devices;
	enum config_split split;
	unsigned pressure_high;    /* % of a GPU in use above which idle models leave */
	unsigned pressure_low;     /* % under which the pressure is over */
	/* the pressure ladder: shrink models onto the CPU (else unload them), grow them back
	 * once the GPU has stayed under pressure_low this long, drain busy ones this long */
	enum config_pressure { CONFIG_PRESSURE_SHRINK, CONFIG_PRESSURE_UNLOAD } pressure_action;
	int regrow;
	unsigned regrow_hold_s;
	unsigned drain_timeout_s;
	/* the OpenAI routes (/v1): requests per model at once, requests waiting in all,
	 * how many later requests may go before a waiting one, names for models */
	unsigned parallel;
	unsigned queue_max;
	unsigned max_overtake;
	struct config_alias aliases[CONFIG_MAX_ALIASES];
	size_t n_aliases;
	/* who may talk to the daemon (guard.h, README "Security") */
	char *allowed_hosts[CONFIG_MAX_URLS];   /* more names for Host: "NAME[:PORT]" */
	size_t n_allowed_hosts;
	char *allowed_origins[CONFIG_MAX_URLS]; /* web origins served with CORS, or "*" */
	size_t n_allowed_origins;
	char *api_key_file;        /* keys, one a line (NULL: only $MLOFFLOAD_API_KEY) */
	int check_only;            /* -n */
};

/* Fills c with the defaults (state and models folders under $HOME, see docs/daemon.md). */
void config_defaults(struct config *c);
/* Reads an INI file over c. Returns 0, or -1 with "FILE:LINE: why" in err; a file that
 * cannot be read (missing, a directory, unreadable, an I/O error, over 1 MiB) is an
 * error with "FILE: why", never an empty configuration. On error c may be half set. */
int config_load_file(struct config *c, const char *path, char *err, size_t errlen);
/* Parses INI text of len bytes (borrowed; need not be NUL-terminated) over c; name is
 * used in the messages. Returns 0 or -1 with "NAME:LINE: why" in err. */
int config_parse_buf(struct config *c, const char *name, const char *buf, size_t len,
    char *err, size_t errlen);
/* Applies argv: --config first (loading that file), then every other flag. Returns 0,
 * 1 when --help or --version was answered, or -1 with err. */
int config_parse_args(struct config *c, int argc, char **argv, char *err, size_t errlen);
/* Checks the whole configuration (folders, URLs). Returns 0 or -1 with err. */
int config_validate(const struct config *c, char *err, size_t errlen);
void config_free(struct config *c);
/* "auto" or "never" into *out: 0, or -1. */
int config_parse_split(const char *v, enum config_split *out);
/* Prints the usage of mloffloadd to f. */
void config_usage(void *f);

/* Moves from's aliases into to (to's freed; from has none after): SIGHUP. */
void config_take_aliases(struct config *to, struct config *from);

#endif
