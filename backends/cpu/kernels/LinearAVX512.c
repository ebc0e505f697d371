/*===- LinearAVX512.c - linear kernel for AVX-512 -------------------------===*
 * f32 panels: a panel row is one zmm load. The kernel is PanelsAVX512.h's.
 *===----------------------------------------------------------------------===*/
#include "KernelCommon.h"

#include <immintrin.h>

#define PANEL_ELEM float
#define PANEL_ARGS LinearArgs
#define PANEL_TASK linear_task
#ifndef PANEL_PREFETCH_ROWS
#define PANEL_PREFETCH_ROWS 0 /* none: the hardware prefetcher does better (PanelsAVX512.h) */
#endif

static inline __m512 panel_widen(const float *p) { return _mm512_loadu_ps(p); }

static inline void panel_finish(const LinearArgs *a, float *yr, __m512 acc, int64_t n0, int64_t nn) {
  __mmask16 mask = (__mmask16)((1u << nn) - 1u);
  __m512 bias = a->bias ? _mm512_maskz_loadu_ps(mask, a->bias + n0) : _mm512_setzero_ps();
  _mm512_mask_storeu_ps(yr, mask, _mm512_add_ps(acc, bias));
}

#include "PanelsAVX512.h"

void kiln_linear_avx512(const KilnRuntimeContext *rt, const float *x, const float *w, const float *bias, float *y,
                        int64_t M, int64_t K, int64_t N) {
  LinearArgs a = {x, w, bias, y, M, K, N};
  int64_t panels = (N + KILN_PANEL - 1) / KILN_PANEL;
  kiln_parallel(rt, (panels + 1) / 2, linear_task, &a);
}
