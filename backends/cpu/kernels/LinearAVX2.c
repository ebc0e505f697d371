/*===- LinearAVX2.c - linear kernel for AVX2 + FMA ------------------------===*
 * A panel row is two ymm vectors; MR = 6 rows give 12 accumulators.
 *===----------------------------------------------------------------------===*/
#include "KernelCommon.h"

#include <immintrin.h>

#define MR 6

static void linear_task(void *arg, int64_t p0, int64_t p1) {
  const LinearArgs *a = (const LinearArgs *)arg;
  const int64_t K = a->K, N = a->N;
  for (int64_t p = p0; p < p1; ++p) {
    const float *panel = a->w + p * K * KILN_PANEL;
    int64_t n0 = p * KILN_PANEL, nn = KILN_MIN(KILN_PANEL, N - n0);
    __m256 b0 = _mm256_setzero_ps(), b1 = _mm256_setzero_ps();
    if (a->bias) {
      float tmp[KILN_PANEL] = {0};
      for (int64_t j = 0; j < nn; ++j)
        tmp[j] = a->bias[n0 + j];
      b0 = _mm256_loadu_ps(tmp);
      b1 = _mm256_loadu_ps(tmp + 8);
    }
    for (int64_t m0 = 0; m0 < a->M; m0 += MR) {
      int64_t mr = KILN_MIN(MR, a->M - m0);
      __m256 acc[MR][2];
      for (int i = 0; i < MR; ++i)
        acc[i][0] = acc[i][1] = _mm256_setzero_ps();
      const float *x = a->x + m0 * K;
      if (mr == MR) {
        for (int64_t k = 0; k < K; ++k) {
          __m256 w0 = _mm256_loadu_ps(panel + k * KILN_PANEL), w1 = _mm256_loadu_ps(panel + k * KILN_PANEL + 8);
          for (int i = 0; i < MR; ++i) {
            __m256 xv = _mm256_broadcast_ss(x + i * K + k);
            acc[i][0] = _mm256_fmadd_ps(xv, w0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(xv, w1, acc[i][1]);
          }
        }
      } else {
        for (int64_t k = 0; k < K; ++k) {
          __m256 w0 = _mm256_loadu_ps(panel + k * KILN_PANEL), w1 = _mm256_loadu_ps(panel + k * KILN_PANEL + 8);
          for (int i = 0; i < mr; ++i) {
            __m256 xv = _mm256_broadcast_ss(x + i * K + k);
            acc[i][0] = _mm256_fmadd_ps(xv, w0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(xv, w1, acc[i][1]);
          }
        }
      }
      for (int i = 0; i < mr; ++i) {
        float out[KILN_PANEL];
        _mm256_storeu_ps(out, _mm256_add_ps(acc[i][0], b0));
        _mm256_storeu_ps(out + 8, _mm256_add_ps(acc[i][1], b1));
        float *yr = a->y + (m0 + i) * N + n0;
        for (int64_t j = 0; j < nn; ++j)
          yr[j] = out[j];
      }
    }
  }
}

void kiln_linear_avx2(const KilnRuntimeContext *rt, const float *x, const float *w, const float *bias, float *y,
                      int64_t M, int64_t K, int64_t N) {
  LinearArgs a = {x, w, bias, y, M, K, N};
  kiln_parallel(rt, (N + KILN_PANEL - 1) / KILN_PANEL, linear_task, &a);
}
