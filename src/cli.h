/*
 * cli: the mloffload client's commands. cli.c dispatches and holds inspect and plan;
 * cli_gen.c holds the developer command that writes GGUF models.
 */
#ifndef MLO_CLI_H
#define MLO_CLI_H

int cli_gen(int argc, char **argv);

#endif
