/*
 * scheduler_reap: at start, the llama-server children an earlier run of the daemon left
 * behind (it was killed, or the machine lost power) are stopped, so that no orphan holds
 * VRAM. A pid in the loads table is only a number, though: after a reboot or a long
 * while it can belong to anything, even to another llama-server someone started by hand.
 * So a process is signalled only when it is provably the child that row recorded: the
 * same boot (boot id), the same start time (field 22 of /proc/PID/stat) and the same
 * `--port N` on its command line, and its name says llama-server. Anything else is left
 * alone and logged; the row is marked stopped either way, since the child it names is
 * gone.
 */
#include "child.h"
#include "config.h"
#include "registry.h"
#include "scheduler.h"
#include "scheduler_int.h"
#include "util.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Whether pid is the child the row recorded; else 0 with why in buf. */
static int same_child(const struct reg_load *row, int pid, char *why, size_t len)
{
	unsigned long long want = row->start_ticks, now = 0;
	char cur_boot[64], port_s[16];
	child_boot_id(cur_boot, sizeof cur_boot);
	snprintf(port_s, sizeof port_s, "%d", row->port);
	if (want == 0)
		snprintf(why, len, "the row does not say when its child started");
	else if (row->boot_id[0] != '\0' && cur_boot[0] != '\0' &&
	    strcmp(row->boot_id, cur_boot) != 0)
		snprintf(why, len, "the row is from an earlier boot");
	else if (child_pid_start_ticks(pid, &now) < 0 || now != want)
		snprintf(why, len, "it started at tick %llu, the child at %llu", now, want);
	else if (!child_pid_has_args(pid, "--port", port_s))
		snprintf(why, len, "its command line has no --port %d", row->port);
	else
		return 1;
	return 0;
}

void sched_reap_orphans(struct sched *s)
{
	size_t n;
	struct reg_load *open = registry_loads_open(s->env.reg, &n);
	for (size_t i = 0; i < n; i++) {
		const struct reg_load *v = &open[i];
		int pid = v->pid;
		const char *id = v->model_id;
		const char *note = "stopped at daemon start";
		char why[128];
		if (pid > 1 && child_pid_alive(pid, "llama-server")) {
			if (same_child(v, pid, why, sizeof why)) {
				log_info("stopping %s (pid %d), left by an earlier run", id, pid);
				kill(-pid, SIGTERM);
				for (int k = 0; k < 100 && child_pid_alive(pid, "llama-server"); k++)
					usleep(50 * 1000);
				if (child_pid_alive(pid, "llama-server"))
					kill(-pid, SIGKILL);
			} else {
				log_warnx("not stopping pid %d: the loads row of %s names it, but it is "
				    "not the llama-server an earlier run started (%s); left alone", pid,
				    id, why);
				note = "gone at daemon start; its pid belongs to another process";
			}
		}
		registry_load_update(s->env.reg, v->row, "stopped", NULL, note);
	}
	registry_loads_free(open, n);
}
