/*===- Elementwise.c - element-wise kernels the graph calls ---------------===*
 * Compiled once per variant (KILN_VARIANT), plain C written to vectorise for
 * the variant's ISA. The generated loops they replace ran one element at a
 * time (MLIR's polynomial tanh does not vectorise in them): GELU was 13% of a
 * GPT-2 124M prefill.
 *===----------------------------------------------------------------------===*/
#include "KernelCommon.h"

#define KILN_CAT2(a, b) a##b
#define KILN_CAT(a, b) KILN_CAT2(a, b)
#define KILN_FN(name) KILN_CAT(name##_, KILN_VARIANT)

/* Elements per task: decode's 3072 run inline, prefill's rows spread. */
#define KILN_GELU_CHUNK 8192

typedef struct GeluArgs {
  const float *x;
  float *y;
  int64_t n;
} GeluArgs;

/* gelu(v) = 0.5 v (1 + tanh(u)), u = sqrt(2/pi) (v + 0.044715 v^3), as
 * v * sigmoid(2u) with the exponential of a non-positive argument only: no
 * overflow, and no cancellation for either sign of u. */
static void gelu_tanh_task(void *arg, int64_t c0, int64_t c1) {
  const GeluArgs *a = (const GeluArgs *)arg;
  const int64_t begin = c0 * KILN_GELU_CHUNK, end = KILN_MIN(a->n, c1 * KILN_GELU_CHUNK);
  for (int64_t i = begin; i < end; ++i) {
    float v = a->x[i];
    float u = 0.7978845608028654f * (v + 0.044715f * (v * v * v));
    float e = kiln_exp_nonpositive(u < 0 ? 2.0f * u : -2.0f * u);
    float s = (u < 0 ? e : 1.0f) / (1.0f + e);
    a->y[i] = v * s;
  }
}

void KILN_FN(kiln_gelu_tanh)(const KilnRuntimeContext *rt, const float *x, float *y, int64_t n) {
  GeluArgs a = {x, y, n};
  kiln_parallel(rt, (n + KILN_GELU_CHUNK - 1) / KILN_GELU_CHUNK, gelu_tanh_task, &a);
}
