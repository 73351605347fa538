/*
 * client_main: mloffload-client, the binary behind mloffload's daemon commands
 * (status, models, ps, load, run, ...). mloffload itself links no libcurl, so that plan,
 * inspect and gen start without loading it; it executes this binary, which sits beside
 * it, with the same arguments.
 */
#include "client.h"

int main(int argc, char **argv)
{
	return client_main(argc > 0 ? argc - 1 : 0, argv + (argc > 0));
}
