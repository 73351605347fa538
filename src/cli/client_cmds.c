/*
 * client_cmds: the names of the commands that talk to a daemon. mloffload (no libcurl)
 * hands these to mloffload-client; both binaries ask here.
 */
#include "client.h"

#include <string.h>

static const char *cmds[] = { "status", "models", "vram", "scan", "budget", "ps", "load",
	"unload", "switch", "events", "logs", "run" };

int client_is_command(const char *cmd)
{
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
		if (strcmp(cmd, cmds[i]) == 0)
			return 1;
	return 0;
}
