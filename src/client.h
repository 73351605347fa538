/*
 * client: the mloffload commands that talk to a running daemon over HTTP (--url,
 * default http://127.0.0.1:9000): status, models, vram, scan, budget. Tables for
 * people, --json prints the daemon's answer as it is.
 */
#ifndef MLO_CLIENT_H
#define MLO_CLIENT_H

/* Runs the client command argv[0] (argc >= 1). Returns the exit status: 0 ok, 1 the
 * daemon answered an error or could not be reached, 2 usage. */
int client_main(int argc, char **argv);
/* 1 if cmd is a client command. */
int client_is_command(const char *cmd);

#endif
