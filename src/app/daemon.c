/*
 * mloffloadd: the daemon. One libevent loop owns everything: the HTTP server (api.c),
 * the device sampler (a timer calling devmon_sample), backend discovery (discover.c,
 * curl multi on the same loop), the model registry (SQLite) and its scans. A scan runs
 * in a worker thread that touches no shared state: it gets a copy of what it needs and
 * writes its result pointer into a pipe, which the loop reads and stores (registry.c).
 * Signals arrive as loop events: SIGTERM/SIGINT stop, SIGHUP reloads the config file.
 * Under systemd (Type=notify) it reports READY, STATUS, WATCHDOG and STOPPING.
 */
#include "api.h"
#include "api_ui.h"
#include "config.h"
#include "device.h"
#include "discover.h"
#include "guard.h"
#include "httpconn.h"
#include "metrics.h"
#include "notify.h"
#include "proxy.h"
#include "registry.h"
#include "reply.h"
#include "scan.h"
#include "scheduler.h"
#include "util.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <event2/event.h>
#include <event2/http.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* ---- the daemon's state ----
 * One struct, owned by main and the one libevent loop; nothing in it is touched from
 * another thread (the scan worker hands its result back through a pipe). This file is
 * the composition root: it makes every part and hands each the narrow handles it
 * reads (struct api_env, proxy_env, sched_env, metrics_env); no other file sees it. */

#define DAEMON_MAX_SCAN_WAITERS 64

struct daemon {
	struct config cfg;
	struct event_base *base;
	struct evhttp *http;
	struct devmon *dev;
	struct registry *reg;
	struct discover *disc;
	struct notify *notify;
	struct sched *sched;
	struct proxy *proxy;
	struct guard *guard;         /* Host, Origin and API key checks (guard.h) */
	struct event *tick_ev;
	time_t started;
	uint64_t started_ms;
	/* scans: one at a time, in a worker thread (view.scanning says one runs) */
	int scan_rescan;             /* another scan was asked for while one ran */
	pthread_t scan_thread;
	int scan_pipe[2];
	struct event *scan_ev;
	struct evhttp_request *scan_waiters[DAEMON_MAX_SCAN_WAITERS];  /* the running scan's */
	size_t n_scan_waiters;
	struct evhttp_request *next_waiters[DAEMON_MAX_SCAN_WAITERS];  /* the next scan's */
	size_t n_next_waiters;
	int argc;                    /* the command line, for SIGHUP (flags override the file) */
	char **argv;
	struct event *sample_ev, *rescan_ev, *discover_ev, *watchdog_ev;
	struct event *sig_term, *sig_int, *sig_hup;
	int stopping;
	/* the catalog as the routes show it, rebuilt when a scan is stored, and the scan
	 * counters (registry.h) */
	struct registry_view view;
	struct api *api;             /* the routes (api.h): owns the connection layer */
};

/* sd_notify(3) without libsystemd: one datagram to $NOTIFY_SOCKET. */
static void sd_notify_msg(const char *msg)
{
	const char *path = getenv("NOTIFY_SOCKET");
	if (path == NULL || (path[0] != '/' && path[0] != '@') || strlen(path) >= 108)
		return;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	memcpy(sa.sun_path, path, strlen(path));
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = '\0';
	/* never block the loop: a full queue on the manager's side drops the message */
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return;
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
	if (sendto(fd, msg, strlen(msg), MSG_NOSIGNAL | MSG_DONTWAIT, (struct sockaddr *)&sa,
	    len) < 0 && errno != EAGAIN)
		log_warnx("sd_notify: %s", strerror(errno));
	close(fd);
}

static void notify_status(struct daemon *d)
{
	char msg[256];
	snprintf(msg, sizeof msg, "STATUS=%lld models, %zu devices, listening on %s:%d",
	    (long long)json_integer_value(json_object_get(d->view.model_counts, "available")),
	    devmon_count(d->dev), d->cfg.listen_host, d->cfg.listen_port);
	sd_notify_msg(msg);
}

/* ---- scans ---- */

struct scan_job {
	struct scan_opts o;
	char **dirs;
	struct scan_known *known;
	size_t n_known;
	struct scan_device *devs;
	struct scan_result *result;
	int fd;
};

static void *scan_worker(void *arg)
{
	struct scan_job *j = arg;
	j->result = scan_run(&j->o);
	ssize_t w;
	do
		w = write(j->fd, &j, sizeof j);
	while (w < 0 && errno == EINTR);
	return NULL;
}

static void scan_job_free(struct scan_job *j)
{
	for (size_t i = 0; i < j->o.n_dirs; i++)
		free(j->dirs[i]);
	free(j->dirs);
	registry_known_free(j->known, j->n_known);
	free(j->devs);
	scan_free(j->result);
	free(j);
}

/* Rebuilds the routes' view of the catalog; names may mean other models now. */
static void daemon_refresh(struct daemon *d)
{
	proxy_forget(d->proxy);
	api_budget_forget(d->api);
	registry_view_refresh(&d->view, d->reg);
}

/* Answers the requests that waited for the scan that just ended; those that came
 * while it ran wait for the next one, which sees their files. */
static void scan_answer(struct daemon *d, int status, json_t *body)
{
	for (size_t i = 0; i < d->n_scan_waiters; i++)
		reply_json(d->scan_waiters[i], status, json_incref(body));
	d->n_scan_waiters = d->n_next_waiters;
	memcpy(d->scan_waiters, d->next_waiters, d->n_next_waiters * sizeof *d->next_waiters);
	d->n_next_waiters = 0;
	json_decref(body);
}

static void daemon_scan(struct daemon *d, struct evhttp_request *waiter);

static void scan_done(evutil_socket_t fd, short ev, void *arg)
{
	struct daemon *d = arg;
	struct scan_job *j;
	if (read(fd, &j, sizeof j) != (ssize_t)sizeof j)
		return;
	pthread_join(d->scan_thread, NULL);
	d->view.scanning = 0;
	struct reg_counts c;
	char err[512];
	if (registry_apply(d->reg, j->result, &c, err, sizeof err) < 0) {
		d->view.scan_errors_total++;
		log_error("storing the scan failed: %s", err);
		scan_answer(d, 500, reply_error_json(REPLY_OPENAI, 500, "internal", err));
	} else {
		d->view.scans_total++;
		log_info("scan: %d added, %d updated, %d removed, %d unchanged, %d errors in %.1f ms",
		    c.added, c.updated, c.removed, c.unchanged, c.errors, j->result->ms);
		json_t *body = json_pack("{s:i,s:i,s:i,s:i,s:i,s:f}", "added", c.added, "updated",
		    c.updated, "removed", c.removed, "unchanged", c.unchanged, "errors", c.errors,
		    "ms", j->result->ms);
		if (j->result->dir_error != NULL)
			json_object_set_new(body, "folder_error", json_string(j->result->dir_error));
		registry_event(d->reg, "scan.finished", body);
		notify_emit(d->notify, "scan.finished", body);
		daemon_refresh(d);
		scan_answer(d, 200, body);
		notify_status(d);
	}
	scan_job_free(j);
	if ((d->scan_rescan || d->n_scan_waiters > 0) && !d->stopping) {
		d->scan_rescan = 0;
		daemon_scan(d, NULL);
	}
}

/* Starts a scan of the model folders unless one runs (then one more follows it). When
 * waiter is not NULL, it is answered with the counts when the scan is stored. */
static void daemon_scan(struct daemon *d, struct evhttp_request *waiter)
{
	if (d->view.scanning) {
		if (waiter != NULL)
			d->next_waiters[d->n_next_waiters++] = waiter;
		d->scan_rescan = 1;
		return;
	}
	if (waiter != NULL)
		d->scan_waiters[d->n_scan_waiters++] = waiter;
	struct scan_job *j = xcalloc(1, sizeof *j);
	j->dirs = xcalloc(d->cfg.n_models_dirs, sizeof *j->dirs);
	for (size_t i = 0; i < d->cfg.n_models_dirs; i++)
		j->dirs[i] = xstrdup(d->cfg.models_dirs[i]);
	j->known = registry_known(d->reg, &j->n_known);
	size_t nd = devmon_count(d->dev);
	j->devs = xcalloc(nd ? nd : 1, sizeof *j->devs);
	for (size_t i = 0; i < nd; i++) {
		const struct device_info *di = devmon_get(d->dev, i);
		struct scan_device *sd = &j->devs[i];
		snprintf(sd->id, sizeof sd->id, "%s", di->id);
		snprintf(sd->name, sizeof sd->name, "%s", di->name);
		sd->budget = di->now.total > d->cfg.reserve ? di->now.total - d->cfg.reserve : 0;
		sd->is_cpu = strcmp(di->kind, "cpu") == 0;
	}
	j->o = (struct scan_opts){ .dirs = j->dirs, .n_dirs = d->cfg.n_models_dirs,
	    .known = j->known, .n_known = j->n_known, .devs = j->devs, .n_devs = nd,
	    .ctx = d->cfg.scan_ctx };
	j->fd = d->scan_pipe[1];
	int prc = pthread_create(&d->scan_thread, NULL, scan_worker, j);
	if (prc != 0) {
		log_error("cannot start a scan thread: %s", strerror(prc));
		scan_job_free(j);
		scan_answer(d, 500, reply_error_json(REPLY_OPENAI, 500, "internal",
		    "cannot start a scan thread"));
		return;
	}
	d->view.scanning = 1;
}

/* POST /models/scan (api_env.scan): -1 when too many requests wait already. */
static int scan_for(void *arg, struct evhttp_request *waiter)
{
	struct daemon *d = arg;
	if (d->n_scan_waiters >= DAEMON_MAX_SCAN_WAITERS ||
	    d->n_next_waiters >= DAEMON_MAX_SCAN_WAITERS)
		return -1;
	daemon_scan(d, waiter);
	return 0;
}

/* ---- timers and signals ---- */

static void on_sample(evutil_socket_t fd, short ev, void *arg)
{
	struct daemon *d = arg;
	devmon_sample(d->dev);
}

static void on_rescan(evutil_socket_t fd, short ev, void *arg)
{
	daemon_scan(arg, NULL);
}

static void on_discover(evutil_socket_t fd, short ev, void *arg)
{
	struct daemon *d = arg;
	discover_poll(d->disc);
}

static void on_tick(evutil_socket_t fd, short ev, void *arg)
{
	struct daemon *d = arg;
	sched_tick(d->sched);
}

/* A model changed state or left the load queue: requests waiting on the /v1 routes
 * look again. */
static void on_sched_changed(void *arg)
{
	struct daemon *d = arg;
	if (d->proxy != NULL)
		proxy_kick(d->proxy);
}

static void on_backend(void *arg, const char *url, int up)
{
	struct daemon *d = arg;
	json_t *e = json_pack("{s:s}", "url", url);
	registry_event(d->reg, up ? "backend.up" : "backend.down", e);
	notify_emit(d->notify, up ? "backend.up" : "backend.down", e);
	json_decref(e);
	log_info("backend %s is %s", url, up ? "up" : "down");
}

static void on_watchdog(evutil_socket_t fd, short ev, void *arg)
{
	sd_notify_msg("WATCHDOG=1");
}

static void on_stop(evutil_socket_t sig, short ev, void *arg)
{
	struct daemon *d = arg;
	log_info("signal %d: stopping", (int)sig);
	d->stopping = 1;
	sd_notify_msg("STOPPING=1");
	event_base_loopexit(d->base, NULL);
}

static void arm_timers(struct daemon *d);

/* The configuration's own checks, then the security ones (guard.c): what -n, the start
 * and SIGHUP refuse. 0, or -1 with a one-line reason. */
static int check_config(const struct config *c, char *err, size_t errlen)
{
	if (config_validate(c, err, errlen) < 0 || guard_check_config(c, err, errlen) < 0)
		return -1;
	return 0;
}

/* SIGHUP re-reads the API keys; a key file that cannot be read keeps the old keys. */
static void reload_keys(struct daemon *d)
{
	char err[1024];
	if (guard_reload(d->guard, err, sizeof err) < 0)
		log_error("SIGHUP: keeping the running API keys: %s", err);
	else
		log_info("SIGHUP: %zu API key(s)", guard_key_count(d->guard));
}

/* Moves the list src (n_src values) into dst (n_dst values, freed). */
static void take_list(char **dst, size_t *n_dst, char **src, size_t *n_src, size_t size)
{
	for (size_t i = 0; i < *n_dst; i++)
		free(dst[i]);
	memcpy(dst, src, size);
	*n_dst = *n_src;
	*n_src = 0;
}

static void on_reload(evutil_socket_t sig, short ev, void *arg)
{
	struct daemon *d = arg;
	if (d->cfg.config_path == NULL) {
		reload_keys(d);
		log_info("SIGHUP: no config file to reload");
		return;
	}
	struct config c;
	char err[1024];
	config_defaults(&c);
	/* the file again, then the command line over it, as at start */
	if (config_parse_args(&c, d->argc, d->argv, err, sizeof err) != 0 ||
	    check_config(&c, err, sizeof err) < 0) {
		log_error("SIGHUP: keeping the running configuration: %s", err);
		config_free(&c);
		return;
	}
	/* port 0 asked for any port: the one bound is what d->cfg holds now */
	if (strcmp(c.listen_host, d->cfg.listen_host) != 0 || (c.listen_port != 0 &&
	    c.listen_port != d->cfg.listen_port) ||
	    strcmp(c.state_dir, d->cfg.state_dir) != 0)
		log_warnx("SIGHUP: listen and state_dir change only on restart");
	/* the parts that change live: folders, intervals, reserve, TTL, the /v1 settings,
	 * log level */
	for (size_t i = 0; i < d->cfg.n_models_dirs; i++)
		free(d->cfg.models_dirs[i]);
	memcpy(d->cfg.models_dirs, c.models_dirs, sizeof c.models_dirs);
	d->cfg.n_models_dirs = c.n_models_dirs;
	c.n_models_dirs = 0;
	d->cfg.rescan_interval_s = c.rescan_interval_s;
	d->cfg.sample_interval_ms = c.sample_interval_ms;
	d->cfg.discover_interval_s = c.discover_interval_s;
	d->cfg.reserve = c.reserve;
	d->cfg.idle_ttl_s = c.idle_ttl_s;
	d->cfg.scan_ctx = c.scan_ctx;
	d->cfg.parallel = c.parallel;
	d->cfg.queue_max = c.queue_max;
	d->cfg.max_overtake = c.max_overtake;
	d->cfg.max_connections = c.max_connections;
	d->cfg.header_timeout_s = c.header_timeout_s;
	d->cfg.body_timeout_s = c.body_timeout_s;
	/* the devices of later loads; running children keep theirs */
	memcpy(d->cfg.rpc_devices, c.rpc_devices, sizeof c.rpc_devices);
	d->cfg.n_rpc_devices = c.n_rpc_devices;
	d->cfg.split = c.split;
	api_conn_opts(d->api);
	config_take_aliases(&d->cfg, &c);
	take_list(d->cfg.allowed_hosts, &d->cfg.n_allowed_hosts, c.allowed_hosts,
	    &c.n_allowed_hosts, sizeof c.allowed_hosts);
	take_list(d->cfg.allowed_origins, &d->cfg.n_allowed_origins, c.allowed_origins,
	    &c.n_allowed_origins, sizeof c.allowed_origins);
	free(d->cfg.api_key_file);
	d->cfg.api_key_file = c.api_key_file;
	c.api_key_file = NULL;
	reload_keys(d);
	proxy_forget(d->proxy);
	util_log_level = d->cfg.log_level = c.log_level;
	config_free(&c);
	arm_timers(d);
	log_info("SIGHUP: configuration reloaded from %s", d->cfg.config_path);
	daemon_scan(d, NULL);
}

static void every(struct event *e, unsigned ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	event_del(e);
	if (ms > 0)
		event_add(e, &tv);
}

static void arm_timers(struct daemon *d)
{
	every(d->sample_ev, d->cfg.sample_interval_ms);
	every(d->rescan_ev, d->cfg.rescan_interval_s * 1000);
	every(d->discover_ev, d->cfg.discover_interval_s * 1000);
}

/* ---- start and stop ---- */

static int mkdir_p(const char *path)
{
	char buf[4096];
	snprintf(buf, sizeof buf, "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p == '/') {
			*p = '\0';
			if (mkdir(buf, 0755) < 0 && errno != EEXIST)
				return -1;
			*p = '/';
		}
	}
	return mkdir(buf, 0700) < 0 && errno != EEXIST ? -1 : 0;
}

/* Creates the state folder if needed and checks it is a writable folder; else logs
 * what is wrong with it (not the database's words about a file it could not make). */
static int state_dir_ready(const char *dir)
{
	struct stat st;
	if (mkdir_p(dir) < 0) {
		if (errno == ENOTDIR || errno == EEXIST)
			log_error("state_dir %s: cannot be created: a part of that path is a file, "
			    "not a folder", dir);
		else
			log_error("state_dir %s: missing and cannot be created: %s", dir,
			    strerror(errno));
		return -1;
	}
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		log_error("state_dir %s: is not a folder (a file is in its place)", dir);
		return -1;
	}
	if (access(dir, W_OK | X_OK) < 0) {
		log_error("state_dir %s: the folder is not writable: %s", dir, strerror(errno));
		return -1;
	}
	return 0;
}

static int start(struct daemon *d)
{
	char err[1024];
	if (state_dir_ready(d->cfg.state_dir) < 0)
		return -1;
	char *db = xasprintf("%s/registry.db", d->cfg.state_dir);
	d->reg = registry_open(db, err, sizeof err);
	free(db);
	if (d->reg == NULL) {
		log_error("%s", err);
		return -1;
	}
	daemon_refresh(d);
	if ((d->guard = guard_new(&d->cfg, err, sizeof err)) == NULL) {
		log_error("%s", err);
		return -1;
	}
	struct devmon_opts mo = { d->cfg.nvml_lib, d->cfg.sysfs_root, NULL, d->cfg.history };
	d->dev = devmon_new(&mo);
	log_info("devices: %zu (NVML: %s)", devmon_count(d->dev), devmon_nvml_status(d->dev));
	if (devmon_count(d->dev) <= 1)
		log_info("no GPU found: models will be planned for the CPU");
	d->base = event_base_new();
	d->http = evhttp_new(d->base);
	if (d->base == NULL || d->http == NULL)
		return -1;
	struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(d->http,
	    d->cfg.listen_host, (ev_uint16_t)d->cfg.listen_port);
	if (bs == NULL) {
		log_error("cannot listen on %s:%d: %s", d->cfg.listen_host, d->cfg.listen_port,
		    strerror(errno));
		return -1;
	}
	/* answers go out whole, not held back by Nagle (accepted sockets inherit this) */
	int one = 1, lfd = evhttp_bound_socket_get_fd(bs);
	setsockopt(lfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	/* libevent listens with a backlog of 128: a burst of clients (tools opening many
	 * requests at once) would see SYNs dropped and a second's delay */
	listen(lfd, 1024);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	if (d->cfg.listen_port == 0 && getsockname(lfd, (struct sockaddr *)&ss, &sl) == 0)
		d->cfg.listen_port = ntohs(ss.ss_family == AF_INET6 ?
		    ((struct sockaddr_in6 *)&ss)->sin6_port : ((struct sockaddr_in *)&ss)->sin_port);
	/* webhooks: parsed by config.c, handed over as they are */
	struct notify_hook hooks[CONFIG_MAX_URLS];
	memset(hooks, 0, sizeof hooks);
	for (size_t i = 0; i < d->cfg.n_webhooks; i++) {
		hooks[i].url = d->cfg.webhooks[i].url;
		hooks[i].events = (const char *const *)d->cfg.webhooks[i].events;
		hooks[i].n_events = d->cfg.webhooks[i].n_events;
	}
	d->notify = notify_new(d->base, hooks, d->cfg.n_webhooks);
	if (d->notify == NULL) {
		log_error("bad webhook configuration");
		return -1;
	}
	struct discover_opts dop = { d->cfg.llama_urls, d->cfg.n_llama_urls, d->cfg.ollama_url,
	    0, 0 };
	d->disc = discover_new(d->base, &dop, on_backend, d);
	struct sched_env se = { d->base, d->reg, d->dev, d->notify, d->disc, &d->cfg,
		on_sched_changed, d, NULL, NULL };
	d->sched = sched_new(&se);
	sched_reap_orphans(d->sched);
	struct proxy_env pe = { d->base, d->reg, d->disc, d->sched, &d->cfg, d->started };
	d->proxy = proxy_new(&pe);
	if (d->proxy == NULL) {
		log_error("cannot set up the /v1 routes (curl)");
		return -1;
	}
	struct api_env ae = { d->base, d->http, d->dev, d->reg, d->disc, d->notify, d->sched,
		d->proxy, d->guard, &d->cfg, &d->view, d->started_ms, scan_for, d };
	if ((d->api = api_new(&ae)) == NULL || httpconn_listen(d->api->conn, bs) < 0)
		return -1;
	d->tick_ev = event_new(d->base, -1, EV_PERSIST, on_tick, d);
	every(d->tick_ev, 1000);
	if (pipe2(d->scan_pipe, O_CLOEXEC) < 0)
		return -1;
	d->scan_ev = event_new(d->base, d->scan_pipe[0], EV_READ | EV_PERSIST, scan_done, d);
	event_add(d->scan_ev, NULL);
	d->sample_ev = event_new(d->base, -1, EV_PERSIST, on_sample, d);
	d->rescan_ev = event_new(d->base, -1, EV_PERSIST, on_rescan, d);
	d->discover_ev = event_new(d->base, -1, EV_PERSIST, on_discover, d);
	arm_timers(d);
	d->sig_term = evsignal_new(d->base, SIGTERM, on_stop, d);
	d->sig_int = evsignal_new(d->base, SIGINT, on_stop, d);
	d->sig_hup = evsignal_new(d->base, SIGHUP, on_reload, d);
	event_add(d->sig_term, NULL);
	event_add(d->sig_int, NULL);
	event_add(d->sig_hup, NULL);
	const char *wd = getenv("WATCHDOG_USEC");
	long long usec;
	if (wd != NULL && util_parse_int(wd, 1000, 1LL << 40, &usec) == 0) {
		d->watchdog_ev = event_new(d->base, -1, EV_PERSIST, on_watchdog, d);
		every(d->watchdog_ev, usec >= 4000 ? (unsigned)(usec / 2000) : 1);
	}
	daemon_scan(d, NULL);
	discover_poll(d->disc);
	log_info("listening on http://%s:%d, models in %zu folder(s), state in %s",
	    d->cfg.listen_host, d->cfg.listen_port, d->cfg.n_models_dirs, d->cfg.state_dir);
	sd_notify_msg("READY=1");
	notify_status(d);
	return 0;
}

static void stop(struct daemon *d)
{
	if (d->view.scanning) {
		pthread_join(d->scan_thread, NULL);
		struct scan_job *j;
		if (read(d->scan_pipe[0], &j, sizeof j) == (ssize_t)sizeof j)
			scan_job_free(j);
	}
	/* waiting and running /v1 requests answered, and given a moment to go out */
	for (int i = proxy_shutdown(d->proxy) > 0 ? 0 : 10; i < 10; i++) {
		event_base_loop(d->base, EVLOOP_NONBLOCK);
		usleep(20 * 1000);
	}
	if (d->sched != NULL)
		sched_shutdown(d->sched); /* SIGTERM to every llama-server child, reaped */
	proxy_free(d->proxy);
	d->proxy = NULL;
	sched_free(d->sched);
	struct event *evs[] = { d->scan_ev, d->sample_ev, d->rescan_ev, d->discover_ev,
	    d->watchdog_ev, d->sig_term, d->sig_int, d->sig_hup, d->tick_ev };
	for (size_t i = 0; i < sizeof evs / sizeof evs[0]; i++)
		if (evs[i] != NULL)
			event_free(evs[i]);
	if (d->disc != NULL)
		discover_free(d->disc);
	notify_free(d->notify);
	api_ui_free();   /* log followers */
	if (d->http != NULL)
		evhttp_free(d->http);
	api_free(d->api); /* after evhttp_free: its connections close through api->conn */
	if (d->base != NULL)
		event_base_free(d->base);
	if (d->scan_pipe[0] > 0) {
		close(d->scan_pipe[0]);
		close(d->scan_pipe[1]);
	}
	registry_view_free(&d->view);
	devmon_free(d->dev);
	registry_close(d->reg);
	guard_free(d->guard);
	config_free(&d->cfg);
}

int main(int argc, char **argv)
{
	struct daemon d;
	char err[1024];
	memset(&d, 0, sizeof d);
	config_defaults(&d.cfg);
	int rc = config_parse_args(&d.cfg, argc, argv, err, sizeof err);
	if (rc == 0 && check_config(&d.cfg, err, sizeof err) < 0)
		rc = -1;
	if (rc != 0) {
		if (rc < 0)
			fprintf(stderr, "mloffloadd: %s\n", err);
		config_free(&d.cfg);
		return rc < 0 ? 1 : 0;
	}
	if (d.cfg.check_only) {
		if (d.cfg.config_path != NULL)
			printf("mloffloadd: configuration OK (%s)\n", d.cfg.config_path);
		else
			printf("mloffloadd: configuration OK\n");
		config_free(&d.cfg);
		return 0;
	}
	util_log_level = d.cfg.log_level;
	signal(SIGPIPE, SIG_IGN);
	d.argc = argc;
	d.argv = argv;
	json_object_seed(0); /* before the scan thread exists */
	d.started = time(NULL);
	d.started_ms = util_mono_ms();
	rc = start(&d) < 0 ? 1 : 0;
	if (rc == 0)
		event_base_dispatch(d.base);
	log_info("stopped");
	stop(&d);
	return rc;
}
