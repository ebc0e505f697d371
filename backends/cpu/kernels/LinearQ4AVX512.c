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

/* Prefill (more rows than a decode block): per pair of 16-channel panels and
 * block of Q4_KB inputs, the weights are dequantized once (exactly, as above)
 * and transposed into f32 panels [Q4_KB][16] on the stack, then multiplied
 * as f32 panels are (12 rows x 2 panels of sums, the partial sums kept in y
 * between input blocks): the lookups are paid once per weight instead of once
 * per 4 rows, and f32's kernel runs at 96% of the FMA peak. */
#define Q4_KB 256

/* Columns of 16 rows of 16 floats: t[j] lane i = r[i] lane j. */
static inline void transpose16(const __m512 r[16], __m512 t[16]) {
  __m512 a[16], b[16];
  for (int i = 0; i < 8; ++i) {
    a[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    a[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int g = 0; g < 4; ++g)
    for (int h = 0; h < 2; ++h) {
      __m512d p = _mm512_castps_pd(a[4 * g + h]), q = _mm512_castps_pd(a[4 * g + 2 + h]);
      b[4 * g + 2 * h] = _mm512_castpd_ps(_mm512_unpacklo_pd(p, q));
      b[4 * g + 2 * h + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(p, q));
    }
  /* b[4g + x], 128-bit lane L: rows 4g..4g+3 of column 4L + x. */
  for (int x = 0; x < 4; ++x) {
    __m512 c = _mm512_shuffle_f32x4(b[x], b[4 + x], 0x44), d = _mm512_shuffle_f32x4(b[8 + x], b[12 + x], 0x44);
    __m512 e = _mm512_shuffle_f32x4(b[x], b[4 + x], 0xEE), f = _mm512_shuffle_f32x4(b[8 + x], b[12 + x], 0xEE);
    t[x] = _mm512_shuffle_f32x4(c, d, 0x88);
    t[4 + x] = _mm512_shuffle_f32x4(c, d, 0xDD);
    t[8 + x] = _mm512_shuffle_f32x4(e, f, 0x88);
    t[12 + x] = _mm512_shuffle_f32x4(e, f, 0xDD);
  }
}

/* Rows m0..m0+R of the two dequantized panels over inputs k0..k0+kb, added
 * to the sums in y unless `first`. Every loop over the rows fully unrolled:
 * one that was not kept the sums in memory, stored after every FMA. */
static inline __attribute__((always_inline)) void q4_block(const Q4Args *a, const float *w0p, const float *w1p,
                                                           int64_t m0, const int R, int64_t k0, int64_t kb, int first,
                                                           int64_t n0, __mmask16 ma, __mmask16 mb) {
  __m512 acc0[12], acc1[12];
  float *y = a->y + m0 * a->N + n0;
  const int64_t N = a->N, K = a->K;
#pragma clang loop unroll(full)
  for (int i = 0; i < R; ++i) {
    acc0[i] = _mm512_maskz_loadu_ps(first ? 0 : ma, y + i * N);
    acc1[i] = _mm512_maskz_loadu_ps(first ? 0 : mb, y + i * N + KILN_PANEL);
  }
  const float *x = a->x + m0 * K + k0;
  for (int64_t k = 0; k < kb; ++k) {
    __m512 w0 = _mm512_load_ps(w0p + k * KILN_PANEL), w1 = _mm512_load_ps(w1p + k * KILN_PANEL);
#pragma clang loop unroll(full)
    for (int i = 0; i < R; ++i) {
      __m512 xv = _mm512_set1_ps(x[i * K + k]);
      acc0[i] = _mm512_fmadd_ps(xv, w0, acc0[i]);
      acc1[i] = _mm512_fmadd_ps(xv, w1, acc1[i]);
    }
  }
#pragma clang loop unroll(full)
  for (int i = 0; i < R; ++i) {
    _mm512_mask_storeu_ps(y + i * N, ma, acc0[i]);
    _mm512_mask_storeu_ps(y + i * N + KILN_PANEL, mb, acc1[i]);
  }
}

/* A function of its own: inlined into the task with the dequantization, the
 * sums of the larger row counts did not all stay in registers. */
static __attribute__((noinline)) void q4_block_any(const Q4Args *a, const float *w0p, const float *w1p, int64_t m0,
                                                   int64_t mr, int64_t k0, int64_t kb, int first, int64_t n0,
                                                   __mmask16 ma, __mmask16 mb) {
#define KILN_Q4_BLOCK_CASE(r)                                                                                       \
  case r:                                                                                                            \
    q4_block(a, w0p, w1p, m0, r, k0, kb, first, n0, ma, mb);                                                         \
    break;
  switch (mr) {
    KILN_Q4_BLOCK_CASE(1) KILN_Q4_BLOCK_CASE(2) KILN_Q4_BLOCK_CASE(3) KILN_Q4_BLOCK_CASE(4) KILN_Q4_BLOCK_CASE(5)
    KILN_Q4_BLOCK_CASE(6) KILN_Q4_BLOCK_CASE(7) KILN_Q4_BLOCK_CASE(8) KILN_Q4_BLOCK_CASE(9) KILN_Q4_BLOCK_CASE(10)
    KILN_Q4_BLOCK_CASE(11) KILN_Q4_BLOCK_CASE(12)
  }
#undef KILN_Q4_BLOCK_CASE
}

static void q4_prefill_task(void *arg, int64_t q0, int64_t q1) {
  const Q4Args *a = (const Q4Args *)arg;
  const int64_t K = a->K, N = a->N, G = a->G, groups = (K + G - 1) / G, rowBytes = K / 2;
  float panel[2][Q4_KB][KILN_PANEL] __attribute__((aligned(64)));
  for (int64_t q = q0; q < q1; ++q) {
    const int64_t n0 = 32 * q, nna = KILN_MIN(KILN_PANEL, N - n0), nnb = KILN_MAX(0, KILN_MIN(KILN_PANEL, N - n0 - KILN_PANEL));
    const __mmask16 ma = (__mmask16)((1u << nna) - 1u), mb = (__mmask16)((1u << nnb) - 1u);
    for (int64_t k0 = 0; k0 < K; k0 += Q4_KB) {
      const int64_t kb = KILN_MIN(Q4_KB, K - k0);
      for (int half = 0; half < 2; ++half)
        for (int64_t kc = 0; kc < kb; kc += 32) {
          __m512 lo[16], hi[16], tl[16], th[16];
          for (int c = 0; c < 16; ++c) { /* channels past N repeat the last: computed and dropped */
            const int64_t n = KILN_MIN(n0 + 16 * half + c, N - 1), g = (k0 + kc) / G;
            const __m512 table = dequant_table(a->params + (n * groups + g) * 2);
            __m512i u = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(a->w + n * rowBytes + (k0 + kc) / 2)));
            lo[c] = _mm512_permutexvar_ps(u, table);
            hi[c] = _mm512_permutexvar_ps(_mm512_srli_epi32(u, 4), table);
          }
          transpose16(lo, tl);
          transpose16(hi, th);
          for (int j = 0; j < 16; ++j) {
            _mm512_store_ps(panel[half][kc + j], tl[j]);
            _mm512_store_ps(panel[half][kc + 16 + j], th[j]);
          }
        }
      for (int64_t m0 = 0; m0 < a->M; m0 += 12)
        q4_block_any(a, &panel[0][0][0], &panel[1][0][0], m0, KILN_MIN(12, a->M - m0), k0, kb, k0 == 0, n0, ma, mb);
    }
    if (a->bias)
      for (int64_t m = 0; m < a->M; ++m)
        for (int64_t j = 0; j < nna + nnb; ++j)
          a->y[m * N + n0 + j] += a->bias[n0 + j];
  }
}

void kiln_linear_q4_avx512(const KilnRuntimeContext *rt, const float *x, const uint8_t *w, const float *params,
                           const float *bias, float *y, int64_t M, int64_t K, int64_t N, int64_t G) {
  Q4Args a = {x, w, params, bias, y, M, K, N, G};
  if (M > KILN_DECODE_MAX_ROWS) {
    kiln_parallel(rt, (N + 31) / 32, q4_prefill_task, &a);
    return;
  }
  kiln_parallel(rt, (N + NR - 1) / NR, q4_task, &a);
}
