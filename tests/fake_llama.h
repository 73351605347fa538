/*
 * fake_llama: the test double of llama.h that test_sched links instead of src/host/llama.c
 * (nothing is spawned; the test drives readiness and exits).
 */
#ifndef MLO_FAKE_LLAMA_H
#define MLO_FAKE_LLAMA_H

#include <stddef.h>

struct llama;

/* The live instance started for alias (the model id), or NULL. */
struct llama *fake_llama_find(const char *alias);
/* The value after flag in its arguments ("-ngl" -> "33"), or NULL (borrowed). */
const char *fake_llama_arg(const struct llama *l, const char *flag);
/* 1 once the scheduler asked it to stop. */
int fake_llama_stopping(const struct llama *l);
/* Says it is ready (the scheduler's ready callback). */
void fake_llama_ready(struct llama *l);
/* Ends it with a waitpid status; l is freed. */
void fake_llama_exit(struct llama *l, int status);
/* Ends every instance asked to stop (exit 0); returns how many. */
size_t fake_llama_reap(void);
/* Instances started so far; instances alive now. */
unsigned fake_llama_started(void);
size_t fake_llama_live(void);
/* What llama_devices answers from now on, as --list-devices would ("Vulkan0,Vulkan1",
 * "" for a CPU-only build); NULL: it cannot say (the default). The scheduler asks once
 * per binary path: change the configured llama_server to be asked again. */
void fake_llama_set_devices(const char *list);

#endif
