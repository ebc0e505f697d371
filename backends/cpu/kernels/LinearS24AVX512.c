/*===- LinearS24AVX512.c - 2:4 sparse f32 linear kernel for AVX-512 -------===*
 * The algorithm of LinearS24.c: the 4 inputs of a group are broadcast to
 * every 128-bit lane, so lane L holds input L % 4 and the zero-extended
 * position byte i0 | i1 << 2 picks input i0 with one vpermps as it is, and
 * input i1 after a shift by 2.
 *===----------------------------------------------------------------------===*/
#include "KernelCommon.h"

#include <immintrin.h>

#define MR 8
#ifndef KILN_S24_PREFETCH_GROUPS
#define KILN_S24_PREFETCH_GROUPS 28 /* about 4 KB ahead, as the dense kernels */
#endif

static inline __m512 group_inputs(const float *x, int64_t g, int64_t K) {
  if (4 * g + 4 <= K)
    return _mm512_broadcast_f32x4(_mm_loadu_ps(x + 4 * g));
  __mmask8 mask = (__mmask8)((1u << (K - 4 * g)) - 1u);
  return _mm512_broadcast_f32x4(_mm_maskz_loadu_ps(mask, x + 4 * g));
}

/* One group of a panel into two accumulators: its first and second kept
 * values times the inputs their positions pick from `xg`. */
static inline void group_fma(const uint8_t *grp, __m512 xg, __m512 *s0, __m512 *s1) {
  __m512i idx = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(grp + 128)));
  *s0 = _mm512_fmadd_ps(_mm512_loadu_ps((const float *)grp), _mm512_permutexvar_ps(idx, xg), *s0);
  *s1 = _mm512_fmadd_ps(_mm512_loadu_ps((const float *)grp + KILN_PANEL),
                        _mm512_permutexvar_ps(_mm512_srli_epi32(idx, 2), xg), *s1);
}

/* Decode rows m0..m0+R (R <= 4) of one panel: one row alone leaves the
 * FMA chains, not the rows, to hide the FMA latency, so two groups per step
 * feed four accumulators per row; a row's arithmetic does not depend on R.
 * Always inlined: a constant R keeps the sums in registers. */
static inline __attribute__((always_inline)) void s24_gemv(const LinearArgs *a, const uint8_t *panel, int64_t m0,
                                                           int R, int64_t n0, __mmask16 mask, __m512 bias) {
  const int64_t K = a->K, G = (K + 3) / 4;
  __m512 s0[4], s1[4], s2[4], s3[4];
  for (int r = 0; r < R; ++r)
    s0[r] = s1[r] = s2[r] = s3[r] = _mm512_setzero_ps();
  int64_t g = 0;
  for (; g + 2 <= G; g += 2) {
    const uint8_t *ga = panel + g * KILN_S24_GROUP_BYTES, *gb = ga + KILN_S24_GROUP_BYTES;
    _mm_prefetch((const char *)(ga + KILN_S24_PREFETCH_GROUPS * KILN_S24_GROUP_BYTES), _MM_HINT_T0);
    _mm_prefetch((const char *)(gb + KILN_S24_PREFETCH_GROUPS * KILN_S24_GROUP_BYTES), _MM_HINT_T0);
    for (int r = 0; r < R; ++r) {
      const float *x = a->x + (m0 + r) * K;
      group_fma(ga, group_inputs(x, g, K), &s0[r], &s1[r]);
      group_fma(gb, group_inputs(x, g + 1, K), &s2[r], &s3[r]);
    }
  }
  for (int r = 0; r < R; ++r) {
    if (g < G)
      group_fma(panel + g * KILN_S24_GROUP_BYTES, group_inputs(a->x + (m0 + r) * K, g, K), &s0[r], &s1[r]);
    _mm512_mask_storeu_ps(a->y + (m0 + r) * a->N + n0, mask,
                          _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(s0[r], s1[r]), _mm512_add_ps(s2[r], s3[r])), bias));
  }
}

static void s24_task(void *arg, int64_t p0, int64_t p1) {
  const LinearArgs *a = (const LinearArgs *)arg;
  const int64_t K = a->K, N = a->N, G = (K + 3) / 4;
  const uint8_t *base = (const uint8_t *)a->w;
  for (int64_t p = p0; p < p1; ++p) {
    const uint8_t *panel = base + p * G * KILN_S24_GROUP_BYTES;
    const int64_t n0 = p * KILN_PANEL, nn = KILN_MIN(KILN_PANEL, N - n0);
    const __mmask16 mask = (__mmask16)((1u << nn) - 1u);
    const __m512 bias = a->bias ? _mm512_maskz_loadu_ps(mask, a->bias + n0) : _mm512_setzero_ps();
    if (a->M <= KILN_DECODE_MAX_ROWS) {
      int64_t m0 = 0;
      for (; m0 + 4 <= a->M; m0 += 4)
        s24_gemv(a, panel, m0, 4, n0, mask, bias);
      switch (a->M - m0) {
      case 3: s24_gemv(a, panel, m0, 3, n0, mask, bias); break;
      case 2: s24_gemv(a, panel, m0, 2, n0, mask, bias); break;
      case 1: s24_gemv(a, panel, m0, 1, n0, mask, bias); break;
      }
      continue;
    }
    for (int64_t m0 = 0; m0 < a->M; m0 += MR) {
      const int64_t mr = KILN_MIN(MR, a->M - m0);
      __m512 acc[MR], acc2[MR];
      for (int r = 0; r < MR; ++r)
        acc[r] = acc2[r] = _mm512_setzero_ps();
      for (int64_t g = 0; g < G; ++g) {
        const uint8_t *grp = panel + g * KILN_S24_GROUP_BYTES;
        _mm_prefetch((const char *)(grp + 8 * KILN_S24_GROUP_BYTES), _MM_HINT_T0);
        __m512 v0 = _mm512_loadu_ps((const float *)grp), v1 = _mm512_loadu_ps((const float *)grp + KILN_PANEL);
        __m512i i0 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(grp + 128)));
        __m512i i1 = _mm512_srli_epi32(i0, 2);
        for (int r = 0; r < mr; ++r) {
          __m512 xg = group_inputs(a->x + (m0 + r) * K, g, K);
          acc[r] = _mm512_fmadd_ps(v0, _mm512_permutexvar_ps(i0, xg), acc[r]);
          acc2[r] = _mm512_fmadd_ps(v1, _mm512_permutexvar_ps(i1, xg), acc2[r]);
        }
      }
      for (int r = 0; r < mr; ++r)
        _mm512_mask_storeu_ps(a->y + (m0 + r) * N + n0, mask, _mm512_add_ps(_mm512_add_ps(acc[r], acc2[r]), bias));
    }
  }
}

void kiln_linear_s24_avx512(const KilnRuntimeContext *rt, const float *x, const float *w, const float *bias, float *y,
                            int64_t M, int64_t K, int64_t N) {
  LinearArgs a = {x, w, bias, y, M, K, N};
  kiln_parallel(rt, (N + KILN_PANEL - 1) / KILN_PANEL, s24_task, &a);
}
