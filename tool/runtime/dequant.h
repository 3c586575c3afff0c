/* dequant.h: GGML tensor blocks to float32 (doc/model.md §2.2). */
#ifndef KVR_DEQUANT_H
#define KVR_DEQUANT_H

#include <stdint.h>

/* GGML tensor types read (their numbers in the GGUF file) */
enum {
    LM_T_F32 = 0, LM_T_F16 = 1, LM_T_Q4_0 = 2, LM_T_Q4_1 = 3, LM_T_Q5_0 = 6, LM_T_Q5_1 = 7,
    LM_T_Q8_0 = 8, LM_T_Q4_K = 12, LM_T_Q5_K = 13, LM_T_Q6_K = 14
};
#define LM_TYPE_NAMES "F32, F16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K"

/* Elements per block and bytes per block of a tensor type; 0 (and nothing
 * set) when the type is not one of the above. */
int lm_type_block(uint32_t type, uint64_t *elems, uint64_t *bytes);
/* Dequantise n elements (a multiple of the block size) of a supported type.
 *   src: n / elems * bytes bytes, out: [n] */
void lm_dequantise(uint32_t type, const unsigned char *src, uint64_t n, float *out);

#endif
