/* cpu_backend.h: the CPU backend behind a model cache (lib/cpu_backend.c,
 * the kernels in cpu/).  lib/cache.c calls these after its argument checks,
 * in blocks marked "CPU dispatch"; doc/cuda.md ("The CPU path") and
 * doc/cpu-results.md describe it. */
#ifndef KVR_CPU_BACKEND_H
#define KVR_CPU_BACKEND_H

#include "internal.h"

/* The thread pool and the workspaces (c->backend_state).  KVR_OK or
 * KVR_ENOMEM (nothing left allocated). */
int kvr_cpu_backend_create(kvr_cache *c);
void kvr_cpu_backend_free(kvr_cache *c);
/* 1 when kvr_attend on c runs the CPU kernels (kvr_cpu_supports). */
int kvr_cpu_backend_takes(const kvr_cache *c);
/* kvr_attend's work with the CPU kernels, then the importance update
 * (spec §6.1) when update is set; c->work must hold the layer's positions
 * (a head whose result is not finite runs the reference there).
 *   q, out: [n_q_heads][D].  KVR_OK or KVR_ENOMEM (nothing changed). */
int kvr_cpu_backend_attend(kvr_cache *c, int layer, const float *q, float *out, int update);

#endif
