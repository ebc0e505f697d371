/*===- LinearQ8AVX512.c - int8 per-channel linear kernel for AVX-512 ------===*
 * As LinearAVX512.c, but each panel row is 16 int8 values widened in
 * registers (vpmovsxbd + vcvtdq2ps) once per k and reused for every row of
 * the block; the per-channel scale multiplies the finished sums.
 *===----------------------------------------------------------------------===*/
#include "KernelCommon.h"

#include <immintrin.h>

#define MR 12

static inline __m512 widen(const int8_t *p) {
  return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)p)));
}

static inline void finish(const Q8Args *a, float *yr, __m512 acc, int64_t n0, int64_t nn) {
  __mmask16 mask = (__mmask16)((1u << nn) - 1u);
  __m512 s = _mm512_maskz_loadu_ps(mask, a->scale + n0);
  __m512 b = a->bias ? _mm512_maskz_loadu_ps(mask, a->bias + n0) : _mm512_setzero_ps();
  _mm512_mask_storeu_ps(yr, mask, _mm512_fmadd_ps(acc, s, b));
}

static void q8_task(void *arg, int64_t q0, int64_t q1) {
  const Q8Args *a = (const Q8Args *)arg;
  const int64_t K = a->K, N = a->N, panels = (N + KILN_PANEL - 1) / KILN_PANEL;
  for (int64_t q = q0; q < q1; ++q) {
    int64_t p = 2 * q;
    const int8_t *pa = a->w + p * K * KILN_PANEL;
    const int8_t *pb = p + 1 < panels ? pa + K * KILN_PANEL : 0;
    int64_t n0 = p * KILN_PANEL, nna = KILN_MIN(KILN_PANEL, N - n0);
    int64_t nnb = pb ? KILN_MIN(KILN_PANEL, N - n0 - KILN_PANEL) : 0;
    if (!pb)
      pb = pa; /* computed and dropped: keeps one code path */
    for (int64_t m0 = 0; m0 < a->M; m0 += MR) {
      int64_t mr = KILN_MIN(MR, a->M - m0);
      const float *x = a->x + m0 * K;
      if (mr == 1) {
        /* Decode: two accumulators per panel hide the FMA latency. */
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), b0 = _mm512_setzero_ps(),
               b1 = _mm512_setzero_ps();
        int64_t k = 0;
        for (; k + 2 <= K; k += 2) {
          /* Software prefetch (the short per-task streams leave the hardware
           * prefetcher little time): 2 KB ahead in both panels. */
          _mm_prefetch((const char *)(pa + (k + 128) * KILN_PANEL), _MM_HINT_T0);
          _mm_prefetch((const char *)(pb + (k + 128) * KILN_PANEL), _MM_HINT_T0);
          __m512 x0 = _mm512_set1_ps(x[k]), x1 = _mm512_set1_ps(x[k + 1]);
          a0 = _mm512_fmadd_ps(x0, widen(pa + k * KILN_PANEL), a0);
          b0 = _mm512_fmadd_ps(x0, widen(pb + k * KILN_PANEL), b0);
          a1 = _mm512_fmadd_ps(x1, widen(pa + (k + 1) * KILN_PANEL), a1);
          b1 = _mm512_fmadd_ps(x1, widen(pb + (k + 1) * KILN_PANEL), b1);
        }
        for (; k < K; ++k) {
          __m512 xv = _mm512_set1_ps(x[k]);
          a0 = _mm512_fmadd_ps(xv, widen(pa + k * KILN_PANEL), a0);
          b0 = _mm512_fmadd_ps(xv, widen(pb + k * KILN_PANEL), b0);
        }
        finish(a, a->y + m0 * N + n0, _mm512_add_ps(a0, a1), n0, nna);
        if (nnb > 0)
          finish(a, a->y + m0 * N + n0 + KILN_PANEL, _mm512_add_ps(b0, b1), n0 + KILN_PANEL, nnb);
        continue;
      }
      __m512 acc0[MR], acc1[MR];
      for (int i = 0; i < MR; ++i)
        acc0[i] = acc1[i] = _mm512_setzero_ps();
      if (mr == MR) {
        for (int64_t k = 0; k < K; ++k) {
          __m512 w0 = widen(pa + k * KILN_PANEL), w1 = widen(pb + k * KILN_PANEL);
          for (int i = 0; i < MR; ++i) {
            __m512 xv = _mm512_set1_ps(x[i * K + k]);
            acc0[i] = _mm512_fmadd_ps(xv, w0, acc0[i]);
            acc1[i] = _mm512_fmadd_ps(xv, w1, acc1[i]);
          }
        }
      } else {
        for (int64_t k = 0; k < K; ++k) {
          __m512 w0 = widen(pa + k * KILN_PANEL), w1 = widen(pb + k * KILN_PANEL);
          for (int i = 0; i < mr; ++i) {
            __m512 xv = _mm512_set1_ps(x[i * K + k]);
            acc0[i] = _mm512_fmadd_ps(xv, w0, acc0[i]);
            acc1[i] = _mm512_fmadd_ps(xv, w1, acc1[i]);
          }
        }
      }
      for (int i = 0; i < mr; ++i) {
        float *yr = a->y + (m0 + i) * N + n0;
        finish(a, yr, acc0[i], n0, nna);
        if (nnb > 0)
          finish(a, yr + KILN_PANEL, acc1[i], n0 + KILN_PANEL, nnb);
      }
    }
  }
}

void kiln_linear_q8_avx512(const KilnRuntimeContext *rt, const float *x, const int8_t *w, const float *scale,
                           const float *bias, float *y, int64_t M, int64_t K, int64_t N) {
  Q8Args a = {x, w, scale, bias, y, M, K, N};
  int64_t panels = (N + KILN_PANEL - 1) / KILN_PANEL;
  kiln_parallel(rt, (panels + 1) / 2, q8_task, &a);
}
