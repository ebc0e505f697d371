/*===- LinearAVX512.c - linear kernel for AVX-512 -------------------------===*
 * A panel row is one zmm vector. Two panels at a time with MR = 12 rows give
 * 24 accumulators; decode (M = 1) streams both panels at full bandwidth.
 *===----------------------------------------------------------------------===*/
#include "KernelCommon.h"

#include <immintrin.h>

#define MR 12
#ifndef KILN_PREFETCH_ROWS
#define KILN_PREFETCH_ROWS 64 /* 4 KB ahead in each panel stream */
#endif

static inline void store_row(float *yr, __m512 acc, __m512 bias, int64_t nn) {
  __mmask16 mask = (__mmask16)((1u << nn) - 1u);
  _mm512_mask_storeu_ps(yr, mask, _mm512_add_ps(acc, bias));
}

static inline __m512 load_bias(const float *bias, int64_t n0, int64_t nn) {
  if (!bias || nn <= 0)
    return _mm512_setzero_ps();
  return _mm512_maskz_loadu_ps((__mmask16)((1u << nn) - 1u), bias + n0);
}

/* Rows m0..m0+mr of two adjacent panels (the second may be absent). */
static inline void block(const LinearArgs *a, const float *pa, const float *pb, int64_t m0, int64_t mr, int64_t n0,
                         int64_t nna, int64_t nnb) {
  const int64_t K = a->K;
  __m512 acc0[MR], acc1[MR];
  for (int i = 0; i < MR; ++i)
    acc0[i] = acc1[i] = _mm512_setzero_ps();
  const float *x = a->x + m0 * K;
  if (mr == MR && pb) {
    for (int64_t k = 0; k < K; ++k) {
      __m512 w0 = _mm512_loadu_ps(pa + k * KILN_PANEL), w1 = _mm512_loadu_ps(pb + k * KILN_PANEL);
      for (int i = 0; i < MR; ++i) {
        __m512 xv = _mm512_set1_ps(x[i * K + k]);
        acc0[i] = _mm512_fmadd_ps(xv, w0, acc0[i]);
        acc1[i] = _mm512_fmadd_ps(xv, w1, acc1[i]);
      }
    }
  } else if (pb) {
    for (int64_t k = 0; k < K; ++k) {
      __m512 w0 = _mm512_loadu_ps(pa + k * KILN_PANEL), w1 = _mm512_loadu_ps(pb + k * KILN_PANEL);
      for (int i = 0; i < mr; ++i) {
        __m512 xv = _mm512_set1_ps(x[i * K + k]);
        acc0[i] = _mm512_fmadd_ps(xv, w0, acc0[i]);
        acc1[i] = _mm512_fmadd_ps(xv, w1, acc1[i]);
      }
    }
  } else {
    for (int64_t k = 0; k < K; ++k) {
      __m512 w0 = _mm512_loadu_ps(pa + k * KILN_PANEL);
      for (int i = 0; i < mr; ++i)
        acc0[i] = _mm512_fmadd_ps(_mm512_set1_ps(x[i * K + k]), w0, acc0[i]);
    }
  }
  __m512 ba = load_bias(a->bias, n0, nna), bb = load_bias(a->bias, n0 + KILN_PANEL, nnb);
  for (int i = 0; i < mr; ++i) {
    float *yr = a->y + (m0 + i) * a->N + n0;
    store_row(yr, acc0[i], ba, nna);
    if (pb)
      store_row(yr + KILN_PANEL, acc1[i], bb, nnb);
  }
}

/* Decode (M = 1): a pure stream over both panels. Four independent
 * accumulators hide the FMA latency, and the loads run ahead of the FMAs
 * so the memory system always has several lines in flight. */
static inline void gemv_pair(const LinearArgs *a, const float *pa, const float *pb, int64_t n0, int64_t nna,
                             int64_t nnb) {
  const int64_t K = a->K;
  const float *x = a->x;
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), b0 = _mm512_setzero_ps(), b1 = _mm512_setzero_ps();
  int64_t k = 0;
  if (pb) {
    for (; k + 2 <= K; k += 2) {
      _mm_prefetch((const char *)(pa + (k + KILN_PREFETCH_ROWS) * KILN_PANEL), _MM_HINT_T0);
      _mm_prefetch((const char *)(pb + (k + KILN_PREFETCH_ROWS) * KILN_PANEL), _MM_HINT_T0);
      __m512 wa0 = _mm512_loadu_ps(pa + k * KILN_PANEL), wb0 = _mm512_loadu_ps(pb + k * KILN_PANEL);
      __m512 wa1 = _mm512_loadu_ps(pa + (k + 1) * KILN_PANEL), wb1 = _mm512_loadu_ps(pb + (k + 1) * KILN_PANEL);
      __m512 x0 = _mm512_set1_ps(x[k]), x1 = _mm512_set1_ps(x[k + 1]);
      a0 = _mm512_fmadd_ps(x0, wa0, a0);
      b0 = _mm512_fmadd_ps(x0, wb0, b0);
      a1 = _mm512_fmadd_ps(x1, wa1, a1);
      b1 = _mm512_fmadd_ps(x1, wb1, b1);
    }
    for (; k < K; ++k) {
      __m512 xv = _mm512_set1_ps(x[k]);
      a0 = _mm512_fmadd_ps(xv, _mm512_loadu_ps(pa + k * KILN_PANEL), a0);
      b0 = _mm512_fmadd_ps(xv, _mm512_loadu_ps(pb + k * KILN_PANEL), b0);
    }
  } else {
    for (; k + 2 <= K; k += 2) {
      a0 = _mm512_fmadd_ps(_mm512_set1_ps(x[k]), _mm512_loadu_ps(pa + k * KILN_PANEL), a0);
      a1 = _mm512_fmadd_ps(_mm512_set1_ps(x[k + 1]), _mm512_loadu_ps(pa + (k + 1) * KILN_PANEL), a1);
    }
    for (; k < K; ++k)
      a0 = _mm512_fmadd_ps(_mm512_set1_ps(x[k]), _mm512_loadu_ps(pa + k * KILN_PANEL), a0);
  }
  store_row(a->y + n0, _mm512_add_ps(a0, a1), load_bias(a->bias, n0, nna), nna);
  if (pb)
    store_row(a->y + n0 + KILN_PANEL, _mm512_add_ps(b0, b1), load_bias(a->bias, n0 + KILN_PANEL, nnb), nnb);
}

/* Task unit: a pair of panels. */
static void linear_task(void *arg, int64_t q0, int64_t q1) {
  const LinearArgs *a = (const LinearArgs *)arg;
  const int64_t K = a->K, N = a->N, panels = (N + KILN_PANEL - 1) / KILN_PANEL;
  for (int64_t q = q0; q < q1; ++q) {
    int64_t p = 2 * q;
    const float *pa = a->w + p * K * KILN_PANEL;
    const float *pb = p + 1 < panels ? pa + K * KILN_PANEL : 0;
    int64_t n0 = p * KILN_PANEL;
    int64_t nna = KILN_MIN(KILN_PANEL, N - n0), nnb = pb ? KILN_MIN(KILN_PANEL, N - n0 - KILN_PANEL) : 0;
    if (a->M == 1) {
      gemv_pair(a, pa, pb, n0, nna, nnb);
      continue;
    }
    for (int64_t m0 = 0; m0 < a->M; m0 += MR)
      block(a, pa, pb, m0, KILN_MIN(MR, a->M - m0), n0, nna, nnb);
  }
}

void kiln_linear_avx512(const KilnRuntimeContext *rt, const float *x, const float *w, const float *bias, float *y,
                        int64_t M, int64_t K, int64_t N) {
  LinearArgs a = {x, w, bias, y, M, K, N};
  int64_t panels = (N + KILN_PANEL - 1) / KILN_PANEL;
  kiln_parallel(rt, (panels + 1) / 2, linear_task, &a);
}
