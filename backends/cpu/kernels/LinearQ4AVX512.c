/*===- LinearQ4AVX512.c - int4 group-wise linear kernel for AVX-512 -------===*
 * The algorithm of LinearQ4.c. Per group and output channel the 16 values a
 * nibble can stand for, (u - zero) * scale, are one zmm register; a chunk
 * of 32 weights is then one zero-extending load, a shift and two vpermps
 * lookups, exact to the reference, and each lane accumulates one input k
 * (lanes are summed once at the end).
 *===----------------------------------------------------------------------===*/
#include "KernelCommon.h"

#include <immintrin.h>

#define MR 4
#define NR 4

static inline __m512 dequant_table(const float *param) {
  const __m512 iota = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  return _mm512_mul_ps(_mm512_sub_ps(iota, _mm512_set1_ps(param[1])), _mm512_set1_ps(param[0]));
}

static void q4_task(void *arg, int64_t b0, int64_t b1) {
  const Q4Args *a = (const Q4Args *)arg;
  const int64_t K = a->K, N = a->N, G = a->G, groups = (K + G - 1) / G, rowBytes = K / 2;
  for (int64_t blk = b0; blk < b1; ++blk) {
    const int64_t n0 = blk * NR, nn = KILN_MIN(NR, N - n0);
    /* Channels past N repeat the last one: computed and dropped. */
    const uint8_t *rows[NR];
    const float *params[NR];
    for (int c = 0; c < NR; ++c) {
      int64_t n = n0 + KILN_MIN(c, nn - 1);
      rows[c] = a->w + n * rowBytes;
      params[c] = a->params + n * groups * 2;
    }
    for (int64_t m0 = 0; m0 < a->M; m0 += MR) {
      const int64_t mr = KILN_MIN(MR, a->M - m0);
      const float *x = a->x + m0 * K;
      __m512 acc[MR][NR];
      for (int r = 0; r < MR; ++r)
        for (int c = 0; c < NR; ++c)
          acc[r][c] = _mm512_setzero_ps();
      for (int64_t g = 0; g < groups; ++g) {
        __m512 table[NR];
        for (int c = 0; c < NR; ++c)
          table[c] = dequant_table(params[c] + 2 * g);
        for (int64_t k0 = g * G; k0 < KILN_MIN(K, (g + 1) * G); k0 += 32) {
          __m512 lo[NR], hi[NR];
          for (int c = 0; c < NR; ++c) {
            __m512i u = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(rows[c] + k0 / 2)));
            lo[c] = _mm512_permutexvar_ps(u, table[c]); /* vpermps reads the low 4 bits of each index */
            hi[c] = _mm512_permutexvar_ps(_mm512_srli_epi32(u, 4), table[c]);
          }
          if (mr == MR) {
            for (int r = 0; r < MR; ++r) {
              __m512 xl = _mm512_loadu_ps(x + r * K + k0), xh = _mm512_loadu_ps(x + r * K + k0 + 16);
              for (int c = 0; c < NR; ++c)
                acc[r][c] = _mm512_fmadd_ps(xh, hi[c], _mm512_fmadd_ps(xl, lo[c], acc[r][c]));
            }
          } else {
            for (int r = 0; r < mr; ++r) {
              __m512 xl = _mm512_loadu_ps(x + r * K + k0), xh = _mm512_loadu_ps(x + r * K + k0 + 16);
              for (int c = 0; c < NR; ++c)
                acc[r][c] = _mm512_fmadd_ps(xh, hi[c], _mm512_fmadd_ps(xl, lo[c], acc[r][c]));
            }
          }
        }
      }
      for (int r = 0; r < mr; ++r)
        for (int c = 0; c < nn; ++c)
          a->y[(m0 + r) * N + n0 + c] = _mm512_reduce_add_ps(acc[r][c]) + (a->bias ? a->bias[n0 + c] : 0.0f);
    }
  }
}

void kiln_linear_q4_avx512(const KilnRuntimeContext *rt, const float *x, const uint8_t *w, const float *params,
                           const float *bias, float *y, int64_t M, int64_t K, int64_t N, int64_t G) {
  Q4Args a = {x, w, params, bias, y, M, K, N, G};
  kiln_parallel(rt, (N + NR - 1) / NR, q4_task, &a);
}
