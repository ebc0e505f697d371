/*===- LinearQ8AVX2.c - int8 per-channel linear kernel for AVX2 + FMA -----===*
 * A panel row of 16 int8 values is two ymm vectors once widened; MR = 6
 * rows give 12 accumulators. The per-channel scale multiplies the sums.
 *===----------------------------------------------------------------------===*/
#include "KernelCommon.h"

#include <immintrin.h>

#define MR 6

static inline __m256 widen8(const int8_t *p) {
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p)));
}

static void q8_task(void *arg, int64_t p0, int64_t p1) {
  const Q8Args *a = (const Q8Args *)arg;
  const int64_t K = a->K, N = a->N;
  for (int64_t p = p0; p < p1; ++p) {
    const int8_t *panel = a->w + p * K * KILN_PANEL;
    int64_t n0 = p * KILN_PANEL, nn = KILN_MIN(KILN_PANEL, N - n0);
    for (int64_t m0 = 0; m0 < a->M; m0 += MR) {
      int64_t mr = KILN_MIN(MR, a->M - m0);
      __m256 acc[MR][2];
      for (int i = 0; i < MR; ++i)
        acc[i][0] = acc[i][1] = _mm256_setzero_ps();
      const float *x = a->x + m0 * K;
      if (mr == MR) {
        for (int64_t k = 0; k < K; ++k) {
          __m256 w0 = widen8(panel + k * KILN_PANEL), w1 = widen8(panel + k * KILN_PANEL + 8);
          for (int i = 0; i < MR; ++i) {
            __m256 xv = _mm256_broadcast_ss(x + i * K + k);
            acc[i][0] = _mm256_fmadd_ps(xv, w0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(xv, w1, acc[i][1]);
          }
        }
      } else {
        for (int64_t k = 0; k < K; ++k) {
          __m256 w0 = widen8(panel + k * KILN_PANEL), w1 = widen8(panel + k * KILN_PANEL + 8);
          for (int i = 0; i < mr; ++i) {
            __m256 xv = _mm256_broadcast_ss(x + i * K + k);
            acc[i][0] = _mm256_fmadd_ps(xv, w0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(xv, w1, acc[i][1]);
          }
        }
      }
      for (int i = 0; i < mr; ++i) {
        float out[KILN_PANEL];
        _mm256_storeu_ps(out, acc[i][0]);
        _mm256_storeu_ps(out + 8, acc[i][1]);
        float *yr = a->y + (m0 + i) * N + n0;
        for (int64_t j = 0; j < nn; ++j)
          yr[j] = out[j] * a->scale[n0 + j] + (a->bias ? a->bias[n0 + j] : 0.0f);
      }
    }
  }
}

void kiln_linear_q8_avx2(const KilnRuntimeContext *rt, const float *x, const int8_t *w, const float *scale,
                         const float *bias, float *y, int64_t M, int64_t K, int64_t N) {
  Q8Args a = {x, w, scale, bias, y, M, K, N};
  kiln_parallel(rt, (N + KILN_PANEL - 1) / KILN_PANEL, q8_task, &a);
}
