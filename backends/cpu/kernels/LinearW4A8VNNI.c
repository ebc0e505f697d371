/*===- LinearW4A8VNNI.c - int4 x int8 linear kernel for AVX-512 VNNI ------===*
 * The algorithm of LinearW4A8.c with vpdpbusd, the nibbles (0..15) as its
 * unsigned operand and the activations as the signed one: a 64-byte block
 * of weights is one load, two ands and a shift, then two vpdpbusd of 64
 * multiply-adds each. Activations arrive as q + 128 (this variant's
 * encoding, see LinearW8A8VNNI.c) and are flipped back to signed once per
 * broadcast.
 *===----------------------------------------------------------------------===*/
#define KILN_XQ_OFFSET 128
#include "QuantizeRows.h"

#include <immintrin.h>

#define MR 8 /* prefill rows per block: 16 int32 sums, each decoded weight block used 8 times */
/* Decode streams each panel once: software prefetch this many bytes ahead
 * (the short per-task streams leave the hardware prefetcher little time). */
#ifndef KILN_W4A8_PREFETCH
#define KILN_W4A8_PREFETCH 1024
#endif

static inline __m512i broadcast_signed(const int8_t *p) {
  int32_t v;
  __builtin_memcpy(&v, p, 4);
  return _mm512_set1_epi32(v ^ (int32_t)0x80808080u);
}

/* The float contribution of one group: (dot - zero * xsum) * scale. */
static inline __m512 group_term(__m512i dot, const int32_t *zeros, int32_t xsum, const float *scale, __m512 acc) {
  __m512i correction = zeros ? _mm512_mullo_epi32(_mm512_loadu_si512(zeros), _mm512_set1_epi32(xsum))
                             : _mm512_set1_epi32(8 * xsum);
  return _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(dot, correction)), _mm512_loadu_ps(scale), acc);
}

static inline void finish(const W4A8Args *a, float *yr, __m512 acc, float xscale, int64_t n0, int64_t nn) {
  __mmask16 mask = (__mmask16)((1u << nn) - 1u);
  __m512 b = a->bias ? _mm512_maskz_loadu_ps(mask, a->bias + n0) : _mm512_setzero_ps();
  _mm512_mask_storeu_ps(yr, mask, _mm512_fmadd_ps(acc, _mm512_set1_ps(xscale), b));
}

/* Decode (one row): two panels, four accumulators each to hide the
 * vpdpbusd latency; the broadcast activations serve both panels. */
static void decode_pair(const W4A8Args *a, const uint8_t *pa, const uint8_t *pb, const float *sa, const float *sb,
                        const int32_t *za, const int32_t *zb, __m512 *outa, __m512 *outb) {
  const int64_t K = a->K, chunks = K / 32, G = a->G, groups = (K + G - 1) / G;
  const __m512i low = _mm512_set1_epi8(15);
  const int8_t *x = a->xq;
  __m512 fa = _mm512_setzero_ps(), fb = _mm512_setzero_ps();
  for (int64_t g = 0; g < groups; ++g) {
    const int64_t c0 = g * (G / 32), c1 = KILN_MIN(chunks, c0 + G / 32);
    __m512i ia0 = _mm512_setzero_si512(), ia1 = ia0, ia2 = ia0, ia3 = ia0, ib0 = ia0, ib1 = ia0, ib2 = ia0, ib3 = ia0;
    int32_t xsum = 0;
    for (int64_t c = c0; c < c1; ++c) {
      xsum += a->xsums[c];
      const int8_t *xc = x + 32 * c;
      const uint8_t *wa = pa + c * 256, *wb = pb + c * 256;
#define KILN_W4A8_STEP(v, ia, ib)                                                                                   \
  {                                                                                                                 \
    __m512i x0 = broadcast_signed(xc + 8 * v), x1 = broadcast_signed(xc + 8 * v + 4);                             \
    __m512i va = _mm512_loadu_si512(wa + 64 * v), vb = _mm512_loadu_si512(wb + 64 * v);                          \
    _mm_prefetch((const char *)(wa + 64 * v + KILN_W4A8_PREFETCH), _MM_HINT_T0);                                  \
    _mm_prefetch((const char *)(wb + 64 * v + KILN_W4A8_PREFETCH), _MM_HINT_T0);                                  \
    ia = _mm512_dpbusd_epi32(ia, _mm512_and_si512(va, low), x0);                                                  \
    ib = _mm512_dpbusd_epi32(ib, _mm512_and_si512(vb, low), x0);                                                  \
    ia = _mm512_dpbusd_epi32(ia, _mm512_and_si512(_mm512_srli_epi16(va, 4), low), x1);                            \
    ib = _mm512_dpbusd_epi32(ib, _mm512_and_si512(_mm512_srli_epi16(vb, 4), low), x1);                            \
  }
      KILN_W4A8_STEP(0, ia0, ib0)
      KILN_W4A8_STEP(1, ia1, ib1)
      KILN_W4A8_STEP(2, ia2, ib2)
      KILN_W4A8_STEP(3, ia3, ib3)
#undef KILN_W4A8_STEP
    }
    __m512i da = _mm512_add_epi32(_mm512_add_epi32(ia0, ia1), _mm512_add_epi32(ia2, ia3));
    __m512i db = _mm512_add_epi32(_mm512_add_epi32(ib0, ib1), _mm512_add_epi32(ib2, ib3));
    fa = group_term(da, za ? za + g * KILN_PANEL : 0, xsum, sa + g * KILN_PANEL, fa);
    fb = group_term(db, zb ? zb + g * KILN_PANEL : 0, xsum, sb + g * KILN_PANEL, fb);
  }
  *outa = fa;
  *outb = fb;
}

/* Prefill: rows m0..m0+R (R <= MR) of two panels. Always inlined with R
 * constant: with a variable row count the sums lived in memory. */
static inline __attribute__((always_inline)) void prefill_block(const W4A8Args *a, const uint8_t *pa,
                                                                const uint8_t *pb, const float *sa, const float *sb,
                                                                const int32_t *za, const int32_t *zb, int64_t m0,
                                                                const int R, int64_t n0, int64_t nna, int64_t nnb) {
  const int64_t K = a->K, N = a->N, Kp = kiln_pad4(K), chunks = K / 32, G = a->G, groups = (K + G - 1) / G;
  const __m512i low = _mm512_set1_epi8(15);
  __m512 fa[MR], fb[MR];
  for (int i = 0; i < R; ++i)
    fa[i] = fb[i] = _mm512_setzero_ps();
  for (int64_t g = 0; g < groups; ++g) {
    const int64_t c0 = g * (G / 32), c1 = KILN_MIN(chunks, c0 + G / 32);
    __m512i ia[MR], ib[MR];
    for (int i = 0; i < R; ++i)
      ia[i] = ib[i] = _mm512_setzero_si512();
    for (int64_t c = c0; c < c1; ++c)
      for (int v = 0; v < 4; ++v) {
        __m512i wa = _mm512_loadu_si512(pa + c * 256 + v * 64), wb = _mm512_loadu_si512(pb + c * 256 + v * 64);
        __m512i la = _mm512_and_si512(wa, low), ha = _mm512_and_si512(_mm512_srli_epi16(wa, 4), low);
        __m512i lb = _mm512_and_si512(wb, low), hb = _mm512_and_si512(_mm512_srli_epi16(wb, 4), low);
        for (int i = 0; i < R; ++i) {
          const int8_t *x = a->xq + (m0 + i) * Kp + 32 * c + 8 * v;
          __m512i x0 = broadcast_signed(x), x1 = broadcast_signed(x + 4);
          ia[i] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(ia[i], la, x0), ha, x1);
          ib[i] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(ib[i], lb, x0), hb, x1);
        }
      }
    for (int i = 0; i < R; ++i) {
      int32_t xsum = 0;
      for (int64_t c = c0; c < c1; ++c)
        xsum += a->xsums[(m0 + i) * chunks + c];
      fa[i] = group_term(ia[i], za ? za + g * KILN_PANEL : 0, xsum, sa + g * KILN_PANEL, fa[i]);
      fb[i] = group_term(ib[i], zb ? zb + g * KILN_PANEL : 0, xsum, sb + g * KILN_PANEL, fb[i]);
    }
  }
  for (int i = 0; i < R; ++i) {
    float *yr = a->y + (m0 + i) * N + n0;
    finish(a, yr, fa[i], a->xscale[m0 + i], n0, nna);
    if (nnb > 0)
      finish(a, yr + KILN_PANEL, fb[i], a->xscale[m0 + i], n0 + KILN_PANEL, nnb);
  }
}

static void w4a8_task(void *arg, int64_t q0, int64_t q1) {
  const W4A8Args *a = (const W4A8Args *)arg;
  const int64_t K = a->K, N = a->N, chunks = K / 32, G = a->G, groups = (K + G - 1) / G;
  const int64_t panels = (N + KILN_PANEL - 1) / KILN_PANEL;
  for (int64_t q = q0; q < q1; ++q) {
    const int64_t p = 2 * q, pb_index = p + 1 < panels ? p + 1 : p; /* a lone last panel is computed twice */
    const uint8_t *pa = a->w + p * chunks * 256, *pb = a->w + pb_index * chunks * 256;
    const float *sa = a->scales + p * groups * KILN_PANEL, *sb = a->scales + pb_index * groups * KILN_PANEL;
    const int32_t *za = a->zeros ? a->zeros + p * groups * KILN_PANEL : 0;
    const int32_t *zb = a->zeros ? a->zeros + pb_index * groups * KILN_PANEL : 0;
    const int64_t n0 = p * KILN_PANEL, nna = KILN_MIN(KILN_PANEL, N - n0);
    const int64_t nnb = p + 1 < panels ? KILN_MIN(KILN_PANEL, N - n0 - KILN_PANEL) : 0;
    if (a->M == 1) {
      __m512 fa, fb;
      decode_pair(a, pa, pb, sa, sb, za, zb, &fa, &fb);
      finish(a, a->y + n0, fa, a->xscale[0], n0, nna);
      if (nnb > 0)
        finish(a, a->y + n0 + KILN_PANEL, fb, a->xscale[0], n0 + KILN_PANEL, nnb);
      continue;
    }
    for (int64_t m0 = 0; m0 < a->M; m0 += MR)
      switch (KILN_MIN(MR, a->M - m0)) {
      case 8: prefill_block(a, pa, pb, sa, sb, za, zb, m0, 8, n0, nna, nnb); break;
      case 7: prefill_block(a, pa, pb, sa, sb, za, zb, m0, 7, n0, nna, nnb); break;
      case 6: prefill_block(a, pa, pb, sa, sb, za, zb, m0, 6, n0, nna, nnb); break;
      case 5: prefill_block(a, pa, pb, sa, sb, za, zb, m0, 5, n0, nna, nnb); break;
      case 4: prefill_block(a, pa, pb, sa, sb, za, zb, m0, 4, n0, nna, nnb); break;
      case 3: prefill_block(a, pa, pb, sa, sb, za, zb, m0, 3, n0, nna, nnb); break;
      case 2: prefill_block(a, pa, pb, sa, sb, za, zb, m0, 2, n0, nna, nnb); break;
      case 1: prefill_block(a, pa, pb, sa, sb, za, zb, m0, 1, n0, nna, nnb); break;
      }
  }
}

void kiln_linear_w4a8_avx512vnni(const KilnRuntimeContext *rt, const int8_t *xq, const float *xscale,
                                 const int32_t *xsums, const uint8_t *w, const float *scales, const int32_t *zeros,
                                 const float *bias, float *y, int64_t M, int64_t K, int64_t N, int64_t G) {
  W4A8Args a = {xq, xscale, xsums, w, scales, zeros, bias, y, M, K, N, G};
  int64_t panels = (N + KILN_PANEL - 1) / KILN_PANEL;
  kiln_parallel(rt, (panels + 1) / 2, w4a8_task, &a);
}
