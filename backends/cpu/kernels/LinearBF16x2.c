/*===- LinearBF16x2.c - linears computed in bf16 (kiln compile --cpu-math=bf16)
 * Compiled per ISA variant. The weights are bf16 in "bf16x2" panels (per 16
 * outputs, [ceil(K/2)][16][2]: the two inputs 2h and 2h+1 of an output side
 * by side), the layout of vdpbf16ps, which multiplies 32 bf16 pairs and adds
 * each output's two products to an f32 sum. Step 1 rounds the activations to
 * bf16 pairs (kiln_round_rows_bf16), step 2 is the product. On AVX512-BF16
 * (the avx512bf16 variant) one vdpbf16ps does the work of two FMAs; other
 * variants compute the same products (exact in f32: 8-bit by 8-bit mantissas)
 * with float multiply-adds, in another order, so their sums differ in the
 * last bits. Lossy against f32 by design: measured in docs/accuracy.md.
 *===----------------------------------------------------------------------===*/
#include "KernelCommon.h"

#if defined(__AVX512BF16__)
#include <immintrin.h>
#endif

#define KILN_CAT2(a, b) a##b
#define KILN_CAT(a, b) KILN_CAT2(a, b)
#define KILN_ROUND_FN KILN_CAT(kiln_round_rows_bf16_, KILN_VARIANT)
#define KILN_FN KILN_CAT(kiln_linear_bf16x2_, KILN_VARIANT)

__attribute__((unused)) static inline float bf16_lo(uint32_t pair) {
  union {
    uint32_t u;
    float f;
  } v = {pair << 16};
  return v.f;
}
__attribute__((unused)) static inline float bf16_hi(uint32_t pair) {
  union {
    uint32_t u;
    float f;
  } v = {pair & 0xffff0000u};
  return v.f;
}

typedef struct RoundArgs {
  const float *x;
  uint16_t *xb;
  int64_t K;
} RoundArgs;

static void round_task(void *arg, int64_t m0, int64_t m1) {
  const RoundArgs *a = (const RoundArgs *)arg;
  const int64_t K = a->K, Kp = (K + 1) / 2 * 2;
  for (int64_t m = m0; m < m1; ++m) {
    const float *x = a->x + m * K;
    uint16_t *xb = a->xb + m * Kp;
    int64_t k = 0;
#if defined(__AVX512BF16__)
    /* vcvtne2ps2bf16: 32 floats per instruction, kiln_round_bf16's rounding. */
    for (; k + 32 <= K; k += 32) {
      __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(x + k + 16), _mm512_loadu_ps(x + k));
      _mm512_storeu_si512((void *)(xb + k), (__m512i)v);
    }
#endif
    for (; k < K; ++k)
      xb[k] = kiln_round_bf16(x[k]);
    if (Kp != K)
      xb[K] = 0;
  }
}

/* Rows of x [M, K] to bf16 rows of round_up(K, 2) values (the pad is 0). */
void KILN_ROUND_FN(const KilnRuntimeContext *rt, const float *x, int64_t M, int64_t K, uint16_t *xb) {
  RoundArgs a = {x, xb, K};
  /* Rows are short work: decode's few rows run inline, a prefill's spread over the pool. */
  if (M <= 16 || !rt || rt->threads <= 1) {
    round_task(&a, 0, M);
    return;
  }
  kiln_parallel(rt, M, round_task, &a);
}

/* A bf16 pair read as one 32-bit word (the buffers are written as uint16_t). */
typedef uint32_t __attribute__((may_alias)) pair_t;

typedef struct BF16x2Args {
  const pair_t *xb; /* rows of Kh bf16 pairs */
  const pair_t *w;  /* panels of [Kh][16] pairs */
  const float *bias;
  float *y;
  int64_t M, K, N;
} BF16x2Args;

#if defined(__AVX512BF16__)
#define MR 12
static inline __m512bh pair_bcast(const pair_t *p) { return (__m512bh)_mm512_set1_epi32((int)*p); }
static inline __m512bh panel_row(const pair_t *p) { return (__m512bh)_mm512_loadu_si512((const void *)p); }
static inline void store_row(const BF16x2Args *a, float *yr, __m512 acc, int64_t n0, int64_t nn) {
  __mmask16 mask = (__mmask16)((1u << nn) - 1u);
  __m512 bias = a->bias ? _mm512_maskz_loadu_ps(mask, a->bias + n0) : _mm512_setzero_ps();
  _mm512_mask_storeu_ps(yr, mask, _mm512_add_ps(acc, bias));
}

/* Prefill: rows m0..m0+R of two adjacent panels (the second may be absent),
 * up to 24 sums in registers, each pair of inputs one vdpbf16ps per row and
 * panel. Always inlined with R and TWO constants: a variable row count (the
 * last block of a prompt) ran 2x slower, 11% of a 128-row product. */
static inline __attribute__((always_inline)) void block(const BF16x2Args *a, const pair_t *pa, const pair_t *pb,
                                                        int64_t m0, const int R, const int TWO, int64_t n0,
                                                        int64_t nna, int64_t nnb) {
  const int64_t Kh = (a->K + 1) / 2;
  const pair_t *x = a->xb + m0 * Kh;
  __m512 acc0[MR], acc1[MR];
  for (int i = 0; i < R; ++i)
    acc0[i] = acc1[i] = _mm512_setzero_ps();
  for (int64_t h = 0; h < Kh; ++h) {
    __m512bh w0 = panel_row(pa + h * KILN_PANEL), w1 = TWO ? panel_row(pb + h * KILN_PANEL) : w0;
    for (int i = 0; i < R; ++i) {
      __m512bh xv = pair_bcast(x + i * Kh + h);
      acc0[i] = _mm512_dpbf16_ps(acc0[i], xv, w0);
      if (TWO)
        acc1[i] = _mm512_dpbf16_ps(acc1[i], xv, w1);
    }
  }
  for (int i = 0; i < R; ++i) {
    float *yr = a->y + (m0 + i) * a->N + n0;
    store_row(a, yr, acc0[i], n0, nna);
    if (TWO)
      store_row(a, yr + KILN_PANEL, acc1[i], n0 + KILN_PANEL, nnb);
  }
}

static void block_any(const BF16x2Args *a, const pair_t *pa, const pair_t *pb, int64_t m0, int64_t mr, int64_t n0,
                      int64_t nna, int64_t nnb) {
#define KILN_BLOCK_CASE(r)                                                                                          \
  case r:                                                                                                            \
    if (pb)                                                                                                          \
      block(a, pa, pb, m0, r, 1, n0, nna, nnb);                                                                      \
    else                                                                                                             \
      block(a, pa, pb, m0, r, 0, n0, nna, nnb);                                                                      \
    break;
  switch (mr) {
    KILN_BLOCK_CASE(1) KILN_BLOCK_CASE(2) KILN_BLOCK_CASE(3) KILN_BLOCK_CASE(4) KILN_BLOCK_CASE(5) KILN_BLOCK_CASE(6)
    KILN_BLOCK_CASE(7) KILN_BLOCK_CASE(8) KILN_BLOCK_CASE(9) KILN_BLOCK_CASE(10) KILN_BLOCK_CASE(11)
    KILN_BLOCK_CASE(12)
  }
#undef KILN_BLOCK_CASE
}

/* Decode: R rows over two panels, a pure stream; two sums per row and panel
 * (even and odd pairs). A row's arithmetic does not depend on R, so batched
 * decode gives each sequence its bits alone. Always inlined: R constant. */
static inline __attribute__((always_inline)) void gemv(const BF16x2Args *a, const pair_t *pa, const pair_t *pb,
                                                       int64_t m0, int R, int64_t n0, int64_t nna, int64_t nnb) {
  const int64_t Kh = (a->K + 1) / 2;
  __m512 a0[4], a1[4], b0[4], b1[4];
  for (int r = 0; r < R; ++r)
    a0[r] = a1[r] = b0[r] = b1[r] = _mm512_setzero_ps();
  const pair_t *x = a->xb + m0 * Kh;
  int64_t h = 0;
  for (; h + 2 <= Kh; h += 2) {
    __m512bh wa0 = panel_row(pa + h * KILN_PANEL), wa1 = panel_row(pa + (h + 1) * KILN_PANEL);
    __m512bh wb0 = pb ? panel_row(pb + h * KILN_PANEL) : wa0, wb1 = pb ? panel_row(pb + (h + 1) * KILN_PANEL) : wa1;
    for (int r = 0; r < R; ++r) {
      __m512bh x0 = pair_bcast(x + r * Kh + h), x1 = pair_bcast(x + r * Kh + h + 1);
      a0[r] = _mm512_dpbf16_ps(a0[r], x0, wa0);
      a1[r] = _mm512_dpbf16_ps(a1[r], x1, wa1);
      if (pb) {
        b0[r] = _mm512_dpbf16_ps(b0[r], x0, wb0);
        b1[r] = _mm512_dpbf16_ps(b1[r], x1, wb1);
      }
    }
  }
  for (; h < Kh; ++h)
    for (int r = 0; r < R; ++r) {
      __m512bh xv = pair_bcast(x + r * Kh + h);
      a0[r] = _mm512_dpbf16_ps(a0[r], xv, panel_row(pa + h * KILN_PANEL));
      if (pb)
        b0[r] = _mm512_dpbf16_ps(b0[r], xv, panel_row(pb + h * KILN_PANEL));
    }
  for (int r = 0; r < R; ++r) {
    float *yr = a->y + (m0 + r) * a->N + n0;
    store_row(a, yr, _mm512_add_ps(a0[r], a1[r]), n0, nna);
    if (pb)
      store_row(a, yr + KILN_PANEL, _mm512_add_ps(b0[r], b1[r]), n0 + KILN_PANEL, nnb);
  }
}
#endif

#if !defined(__AVX512BF16__)
/* Portable: one row of one panel, the pairs in order (the products are exact;
 * each sum adds the even input's product, then the odd one's). */
static void row_portable(const BF16x2Args *a, const pair_t *panel, int64_t m, int64_t n0, int64_t nn) {
  const int64_t Kh = (a->K + 1) / 2;
  const pair_t *x = a->xb + m * Kh;
  float acc[KILN_PANEL] = {0};
  for (int64_t h = 0; h < Kh; ++h) {
    float xe = bf16_lo(x[h]), xo = bf16_hi(x[h]);
    const pair_t *w = panel + h * KILN_PANEL;
    for (int j = 0; j < KILN_PANEL; ++j)
      acc[j] = (acc[j] + xe * bf16_lo(w[j])) + xo * bf16_hi(w[j]);
  }
  float *yr = a->y + m * a->N + n0;
  for (int64_t j = 0; j < nn; ++j)
    yr[j] = acc[j] + (a->bias ? a->bias[n0 + j] : 0.0f);
}
#endif

/* Task unit: a pair of panels. */
static void bf16x2_task(void *arg, int64_t q0, int64_t q1) {
  const BF16x2Args *a = (const BF16x2Args *)arg;
  const int64_t Kh = (a->K + 1) / 2, N = a->N, panels = (N + KILN_PANEL - 1) / KILN_PANEL;
  for (int64_t q = q0; q < q1; ++q) {
    int64_t p = 2 * q, n0 = p * KILN_PANEL;
    const pair_t *pa = a->w + p * Kh * KILN_PANEL;
    const pair_t *pb = p + 1 < panels ? pa + Kh * KILN_PANEL : 0;
    int64_t nna = KILN_MIN(KILN_PANEL, N - n0), nnb = pb ? KILN_MIN(KILN_PANEL, N - n0 - KILN_PANEL) : 0;
#if defined(__AVX512BF16__)
    if (a->M <= KILN_DECODE_MAX_ROWS) {
      int64_t m0 = 0;
      for (; m0 + 4 <= a->M; m0 += 4)
        gemv(a, pa, pb, m0, 4, n0, nna, nnb);
      switch (a->M - m0) {
      case 3: gemv(a, pa, pb, m0, 3, n0, nna, nnb); break;
      case 2: gemv(a, pa, pb, m0, 2, n0, nna, nnb); break;
      case 1: gemv(a, pa, pb, m0, 1, n0, nna, nnb); break;
      }
      continue;
    }
    for (int64_t m0 = 0; m0 < a->M; m0 += MR)
      block_any(a, pa, pb, m0, KILN_MIN(MR, a->M - m0), n0, nna, nnb);
#else
    for (int64_t m = 0; m < a->M; ++m) {
      row_portable(a, pa, m, n0, nna);
      if (pb)
        row_portable(a, pb, m, n0 + KILN_PANEL, nnb);
    }
#endif
  }
}

/* y[M, N] = xb @ W + bias; xb from kiln_round_rows_bf16, W in bf16x2 panels. */
void KILN_FN(const KilnRuntimeContext *rt, const uint16_t *xb, const uint16_t *w, const float *bias, float *y,
             int64_t M, int64_t K, int64_t N) {
  BF16x2Args a = {(const pair_t *)xb, (const pair_t *)w, bias, y, M, K, N};
  int64_t panels = (N + KILN_PANEL - 1) / KILN_PANEL;
  kiln_parallel(rt, (panels + 1) / 2, bf16x2_task, &a);
}
