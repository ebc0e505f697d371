/*===- LinearAVX2.c - linear kernel for AVX2 + FMA ------------------------===*
 * f32 panels: 8 values of a panel row are one ymm load. The kernel is
 * PanelsAVX2.h's.
 *===----------------------------------------------------------------------===*/
#include "KernelCommon.h"

#include <immintrin.h>

#define PANEL_ELEM float
#define PANEL_ARGS LinearArgs
#define PANEL_TASK linear_task

static inline __m256 panel_widen(const float *p) { return _mm256_loadu_ps(p); }

static inline void panel_finish(const LinearArgs *a, const float *out, float *yr, int64_t n0, int64_t nn) {
  for (int64_t j = 0; j < nn; ++j)
    yr[j] = out[j] + (a->bias ? a->bias[n0 + j] : 0.0f);
}

#include "PanelsAVX2.h"

void kiln_linear_avx2(const KilnRuntimeContext *rt, const float *x, const float *w, const float *bias, float *y,
                      int64_t M, int64_t K, int64_t N) {
  LinearArgs a = {x, w, bias, y, M, K, N};
  kiln_parallel(rt, (N + KILN_PANEL - 1) / KILN_PANEL, linear_task, &a);
}
