/*===- LinearQ8AVX2.c - int8 per-channel linear kernel for AVX2 + FMA -----===*
 * int8 panels: 8 int8 values of a panel row are widened to one ymm; the
 * per-channel scale multiplies the finished sums. The kernel is
 * PanelsAVX2.h's.
 *===----------------------------------------------------------------------===*/
#include "KernelCommon.h"

#include <immintrin.h>

#define PANEL_ELEM int8_t
#define PANEL_ARGS Q8Args
#define PANEL_TASK q8_task

static inline __m256 panel_widen(const int8_t *p) {
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p)));
}

static inline void panel_finish(const Q8Args *a, const float *out, float *yr, int64_t n0, int64_t nn) {
  for (int64_t j = 0; j < nn; ++j)
    yr[j] = out[j] * a->scale[n0 + j] + (a->bias ? a->bias[n0 + j] : 0.0f);
}

#include "PanelsAVX2.h"

void kiln_linear_q8_avx2(const KilnRuntimeContext *rt, const float *x, const int8_t *w, const float *scale,
                         const float *bias, float *y, int64_t M, int64_t K, int64_t N) {
  Q8Args a = {x, w, scale, bias, y, M, K, N};
  kiln_parallel(rt, (N + KILN_PANEL - 1) / KILN_PANEL, q8_task, &a);
}
