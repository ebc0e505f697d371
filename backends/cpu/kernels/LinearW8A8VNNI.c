/*===- LinearW8A8VNNI.c - int8 x int8 linear kernel for AVX-512 VNNI ------===*
 * The algorithm of LinearW8A8.c with vpdpbusd: 64 multiply-adds of bytes per
 * instruction. vpdpbusd multiplies unsigned by signed bytes, so activations
 * are stored as q + 128 and the weights' column sums times 128 (wsum,
 * computed at packing) are subtracted once from each finished dot product.
 *===----------------------------------------------------------------------===*/
#define KILN_XQ_OFFSET 128
#include "QuantizeRows.h"

#include <immintrin.h>

#define MR 12

static inline __m512i broadcast4(const int8_t *p) {
  int32_t v;
  __builtin_memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

static inline void finish(const W8A8Args *a, float *yr, __m512i acc, float xscale, int64_t n0, int64_t nn) {
  __mmask16 mask = (__mmask16)((1u << nn) - 1u);
  __m512i sum = _mm512_maskz_loadu_epi32(mask, a->wsum + n0);
  __m512 s = _mm512_mul_ps(_mm512_set1_ps(xscale), _mm512_maskz_loadu_ps(mask, a->wscale + n0));
  __m512 b = a->bias ? _mm512_maskz_loadu_ps(mask, a->bias + n0) : _mm512_setzero_ps();
  __m512 v = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc, sum));
  _mm512_mask_storeu_ps(yr, mask, _mm512_fmadd_ps(v, s, b));
}

static void w8a8_task(void *arg, int64_t q0, int64_t q1) {
  const W8A8Args *a = (const W8A8Args *)arg;
  const int64_t Kp = kiln_pad4(a->K), K4 = Kp / 4, N = a->N, panels = (N + KILN_PANEL - 1) / KILN_PANEL;
  for (int64_t q = q0; q < q1; ++q) {
    const int64_t p = 2 * q;
    const int8_t *pa = a->w + p * Kp * KILN_PANEL;
    const int8_t *pb = p + 1 < panels ? pa + Kp * KILN_PANEL : 0;
    const int64_t n0 = p * KILN_PANEL, nna = KILN_MIN(KILN_PANEL, N - n0);
    const int64_t nnb = pb ? KILN_MIN(KILN_PANEL, N - n0 - KILN_PANEL) : 0;
    if (!pb)
      pb = pa; /* computed and dropped: keeps one code path */
    for (int64_t m0 = 0; m0 < a->M; m0 += MR) {
      const int64_t mr = KILN_MIN(MR, a->M - m0);
      const int8_t *x = a->xq + m0 * Kp;
      if (mr == 1) {
        /* Decode: two accumulators per panel hide the vpdpbusd latency. */
        __m512i a0 = _mm512_setzero_si512(), a1 = a0, b0 = a0, b1 = a0;
        int64_t k4 = 0;
        for (; k4 + 2 <= K4; k4 += 2) {
          __m512i x0 = broadcast4(x + 4 * k4), x1 = broadcast4(x + 4 * k4 + 4);
          a0 = _mm512_dpbusd_epi32(a0, x0, _mm512_loadu_si512(pa + k4 * 64));
          b0 = _mm512_dpbusd_epi32(b0, x0, _mm512_loadu_si512(pb + k4 * 64));
          a1 = _mm512_dpbusd_epi32(a1, x1, _mm512_loadu_si512(pa + k4 * 64 + 64));
          b1 = _mm512_dpbusd_epi32(b1, x1, _mm512_loadu_si512(pb + k4 * 64 + 64));
        }
        for (; k4 < K4; ++k4) {
          __m512i x0 = broadcast4(x + 4 * k4);
          a0 = _mm512_dpbusd_epi32(a0, x0, _mm512_loadu_si512(pa + k4 * 64));
          b0 = _mm512_dpbusd_epi32(b0, x0, _mm512_loadu_si512(pb + k4 * 64));
        }
        finish(a, a->y + m0 * N + n0, _mm512_add_epi32(a0, a1), a->xscale[m0], n0, nna);
        if (nnb > 0)
          finish(a, a->y + m0 * N + n0 + KILN_PANEL, _mm512_add_epi32(b0, b1), a->xscale[m0], n0 + KILN_PANEL, nnb);
        continue;
      }
      __m512i acc0[MR], acc1[MR];
      for (int i = 0; i < MR; ++i)
        acc0[i] = acc1[i] = _mm512_setzero_si512();
      if (mr == MR) {
        for (int64_t k4 = 0; k4 < K4; ++k4) {
          __m512i wa = _mm512_loadu_si512(pa + k4 * 64), wb = _mm512_loadu_si512(pb + k4 * 64);
          for (int i = 0; i < MR; ++i) {
            __m512i xb = broadcast4(x + i * Kp + 4 * k4);
            acc0[i] = _mm512_dpbusd_epi32(acc0[i], xb, wa);
            acc1[i] = _mm512_dpbusd_epi32(acc1[i], xb, wb);
          }
        }
      } else {
        for (int64_t k4 = 0; k4 < K4; ++k4) {
          __m512i wa = _mm512_loadu_si512(pa + k4 * 64), wb = _mm512_loadu_si512(pb + k4 * 64);
          for (int i = 0; i < mr; ++i) {
            __m512i xb = broadcast4(x + i * Kp + 4 * k4);
            acc0[i] = _mm512_dpbusd_epi32(acc0[i], xb, wa);
            acc1[i] = _mm512_dpbusd_epi32(acc1[i], xb, wb);
          }
        }
      }
      for (int i = 0; i < mr; ++i) {
        float *yr = a->y + (m0 + i) * N + n0;
        finish(a, yr, acc0[i], a->xscale[m0 + i], n0, nna);
        if (nnb > 0)
          finish(a, yr + KILN_PANEL, acc1[i], a->xscale[m0 + i], n0 + KILN_PANEL, nnb);
      }
    }
  }
}

void kiln_quantize_rows_avx512vnni(const KilnRuntimeContext *rt, const float *x, int64_t M, int64_t K,
                                   float static_scale, int8_t *xq, float *scales, int32_t *xsums) {
  kiln_quantize_rows_impl(rt, x, M, K, static_scale, xq, scales, xsums);
}

void kiln_linear_w8a8_avx512vnni(const KilnRuntimeContext *rt, const int8_t *xq, const float *xscale, const int8_t *w,
                                 const float *wscale, const int32_t *wsum, const float *bias, float *y, int64_t M,
                                 int64_t K, int64_t N) {
  W8A8Args a = {xq, xscale, w, wscale, wsum, bias, y, M, K, N};
  int64_t panels = (N + KILN_PANEL - 1) / KILN_PANEL;
  kiln_parallel(rt, (panels + 1) / 2, w8a8_task, &a);
}
