/* fuzz.h: the libFuzzer entry point every target in fuzz/ defines.  Built
 * with -fsanitize=fuzzer under --enable-fuzz (make fuzz), or linked with
 * fuzz/replay.c into a plain program that replays saved inputs in make
 * check (regression tests for every crash found). */
#ifndef KVR_FUZZ_H
#define KVR_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
