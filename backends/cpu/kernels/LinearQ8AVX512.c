/*===- LinearQ8AVX512.c - int8 per-channel linear kernel for AVX-512 ------===*
 * int8 panels: a panel row is 16 int8 values widened in registers
 * (vpmovsxbd + vcvtdq2ps) once per k and reused for every row of the block;
 * the per-channel scale multiplies the finished sums. The kernel is
 * PanelsAVX512.h's.
 *===----------------------------------------------------------------------===*/
#include "KernelCommon.h"

#include <immintrin.h>

#define PANEL_ELEM int8_t
#define PANEL_ARGS Q8Args
#define PANEL_TASK q8_task
#ifndef PANEL_PREFETCH_ROWS
#define PANEL_PREFETCH_ROWS 128 /* 2 KB ahead in each panel stream */
#endif
#define PANEL_WIDEN_COSTLY 1

static inline __m512 panel_widen(const int8_t *p) {
  return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)p)));
}

static inline void panel_finish(const Q8Args *a, float *yr, __m512 acc, int64_t n0, int64_t nn) {
  __mmask16 mask = (__mmask16)((1u << nn) - 1u);
  __m512 s = _mm512_maskz_loadu_ps(mask, a->scale + n0);
  __m512 b = a->bias ? _mm512_maskz_loadu_ps(mask, a->bias + n0) : _mm512_setzero_ps();
  _mm512_mask_storeu_ps(yr, mask, _mm512_fmadd_ps(acc, s, b));
}

#include "PanelsAVX512.h"

void kiln_linear_q8_avx512(const KilnRuntimeContext *rt, const float *x, const int8_t *w, const float *scale,
                           const float *bias, float *y, int64_t M, int64_t K, int64_t N) {
  Q8Args a = {x, w, scale, bias, y, M, K, N};
  int64_t panels = (N + KILN_PANEL - 1) / KILN_PANEL;
  kiln_parallel(rt, (panels + 1) / 2, q8_task, &a);
}
