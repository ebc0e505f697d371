/*===- PanelsAVX512.h - the panel kernel of f32 and int8 weights, AVX-512 -===*
 * Included by LinearAVX512.c and LinearQ8AVX512.c, which differ only in how
 * a panel row becomes 16 floats and how a finished row is stored. Before
 * including, they define:
 *   PANEL_ELEM, PANEL_ARGS        the stored element type, the argument struct
 *   panel_widen(p)                one panel row (16 outputs of one input) -> zmm
 *   panel_finish(a, yr, acc, n0, nn)   stores outputs n0..n0+nn of a row
 *   PANEL_PREFETCH_ROWS, PANEL_TASK    decode's prefetch distance, the task's name
 * Two panels at a time with MR = 12 rows give 24 accumulators. Decode (M up
 * to KILN_DECODE_MAX_ROWS, one row per sequence) is a pure stream over both
 * panels: four independent accumulators hide the FMA latency. Software
 * prefetch PANEL_PREFETCH_ROWS ahead (0: none) is the element type's choice:
 * f32 panel rows are whole cache lines, and prefetching them 4 KB ahead made
 * GPT-2 decode 1.35x slower on Zen 4 than leaving them to the hardware.
 *===----------------------------------------------------------------------===*/
#define MR 12

/* Rows m0..m0+R of two adjacent panels (the second may be absent, TWO = 0).
 * Always inlined with R and TWO constants (panel_block_any's switch): with a
 * variable row count the last block of a prompt (128 = 10 x 12 + 8) ran at
 * half speed, 11% of a 128-row product. A row's sums do not depend on R. */
static inline __attribute__((always_inline)) void panel_block(const PANEL_ARGS *a, const PANEL_ELEM *pa,
                                                              const PANEL_ELEM *pb, int64_t m0, const int R,
                                                              const int TWO, int64_t n0, int64_t nna, int64_t nnb) {
  const int64_t K = a->K;
  __m512 acc0[MR], acc1[MR];
  for (int i = 0; i < R; ++i)
    acc0[i] = acc1[i] = _mm512_setzero_ps();
  const float *x = a->x + m0 * K;
  for (int64_t k = 0; k < K; ++k) {
    __m512 w0 = panel_widen(pa + k * KILN_PANEL), w1 = TWO ? panel_widen(pb + k * KILN_PANEL) : w0;
    for (int i = 0; i < R; ++i) {
      __m512 xv = _mm512_set1_ps(x[i * K + k]);
      acc0[i] = _mm512_fmadd_ps(xv, w0, acc0[i]);
      if (TWO)
        acc1[i] = _mm512_fmadd_ps(xv, w1, acc1[i]);
    }
  }
  for (int i = 0; i < R; ++i) {
    float *yr = a->y + (m0 + i) * a->N + n0;
    panel_finish(a, yr, acc0[i], n0, nna);
    if (TWO)
      panel_finish(a, yr + KILN_PANEL, acc1[i], n0 + KILN_PANEL, nnb);
  }
}

static void panel_block_any(const PANEL_ARGS *a, const PANEL_ELEM *pa, const PANEL_ELEM *pb, int64_t m0, int64_t mr,
                            int64_t n0, int64_t nna, int64_t nnb) {
#define KILN_PANEL_BLOCK_CASE(r)                                                                                    \
  case r:                                                                                                            \
    if (pb)                                                                                                          \
      panel_block(a, pa, pb, m0, r, 1, n0, nna, nnb);                                                                \
    else                                                                                                             \
      panel_block(a, pa, pb, m0, r, 0, n0, nna, nnb);                                                                \
    break;
  switch (mr) {
    KILN_PANEL_BLOCK_CASE(1) KILN_PANEL_BLOCK_CASE(2) KILN_PANEL_BLOCK_CASE(3) KILN_PANEL_BLOCK_CASE(4)
    KILN_PANEL_BLOCK_CASE(5) KILN_PANEL_BLOCK_CASE(6) KILN_PANEL_BLOCK_CASE(7) KILN_PANEL_BLOCK_CASE(8)
    KILN_PANEL_BLOCK_CASE(9) KILN_PANEL_BLOCK_CASE(10) KILN_PANEL_BLOCK_CASE(11) KILN_PANEL_BLOCK_CASE(12)
  }
#undef KILN_PANEL_BLOCK_CASE
}

/* Decode over two adjacent panels (the second may be absent) for R <= 4
 * rows from m0 (R <= 8 over one panel): each row's arithmetic is exactly that of R = 1 (the same
 * accumulators, the same order), so a batched decode gives each sequence
 * the bits it gets alone, while the rows share every weight load. */
static inline __attribute__((always_inline)) void panel_gemv(const PANEL_ARGS *a, const PANEL_ELEM *pa, const PANEL_ELEM *pb, int64_t m0, int R,
                              int64_t n0, int64_t nna, int64_t nnb) {
  const int64_t K = a->K;
  const float *x[8];
  __m512 a0[8], a1[8], b0[8], b1[8];
  for (int r = 0; r < R; ++r) {
    x[r] = a->x + (m0 + r) * K;
    a0[r] = a1[r] = b0[r] = b1[r] = _mm512_setzero_ps();
  }
  int64_t k = 0;
  if (pb) {
    for (; k + 2 <= K; k += 2) {
#if PANEL_PREFETCH_ROWS > 0
      _mm_prefetch((const char *)(pa + (k + PANEL_PREFETCH_ROWS) * KILN_PANEL), _MM_HINT_T0);
      _mm_prefetch((const char *)(pb + (k + PANEL_PREFETCH_ROWS) * KILN_PANEL), _MM_HINT_T0);
#endif
      __m512 wa0 = panel_widen(pa + k * KILN_PANEL), wb0 = panel_widen(pb + k * KILN_PANEL);
      __m512 wa1 = panel_widen(pa + (k + 1) * KILN_PANEL), wb1 = panel_widen(pb + (k + 1) * KILN_PANEL);
      for (int r = 0; r < R; ++r) {
        __m512 x0 = _mm512_set1_ps(x[r][k]), x1 = _mm512_set1_ps(x[r][k + 1]);
        a0[r] = _mm512_fmadd_ps(x0, wa0, a0[r]);
        b0[r] = _mm512_fmadd_ps(x0, wb0, b0[r]);
        a1[r] = _mm512_fmadd_ps(x1, wa1, a1[r]);
        b1[r] = _mm512_fmadd_ps(x1, wb1, b1[r]);
      }
    }
    for (; k < K; ++k)
      for (int r = 0; r < R; ++r) {
        __m512 xv = _mm512_set1_ps(x[r][k]);
        a0[r] = _mm512_fmadd_ps(xv, panel_widen(pa + k * KILN_PANEL), a0[r]);
        b0[r] = _mm512_fmadd_ps(xv, panel_widen(pb + k * KILN_PANEL), b0[r]);
      }
  } else {
    for (; k + 2 <= K; k += 2) {
#if PANEL_PREFETCH_ROWS > 0
      _mm_prefetch((const char *)(pa + (k + PANEL_PREFETCH_ROWS) * KILN_PANEL), _MM_HINT_T0);
#endif
      __m512 wa0 = panel_widen(pa + k * KILN_PANEL), wa1 = panel_widen(pa + (k + 1) * KILN_PANEL);
      for (int r = 0; r < R; ++r) {
        a0[r] = _mm512_fmadd_ps(_mm512_set1_ps(x[r][k]), wa0, a0[r]);
        a1[r] = _mm512_fmadd_ps(_mm512_set1_ps(x[r][k + 1]), wa1, a1[r]);
      }
    }
    for (; k < K; ++k)
      for (int r = 0; r < R; ++r)
        a0[r] = _mm512_fmadd_ps(_mm512_set1_ps(x[r][k]), panel_widen(pa + k * KILN_PANEL), a0[r]);
  }
  for (int r = 0; r < R; ++r) {
    float *yr = a->y + (m0 + r) * a->N + n0;
    panel_finish(a, yr, _mm512_add_ps(a0[r], a1[r]), n0, nna);
    if (pb)
      panel_finish(a, yr + KILN_PANEL, _mm512_add_ps(b0[r], b1[r]), n0 + KILN_PANEL, nnb);
  }
}

/* Task unit: a pair of panels. */
static void PANEL_TASK(void *arg, int64_t q0, int64_t q1) {
  const PANEL_ARGS *a = (const PANEL_ARGS *)arg;
  const int64_t K = a->K, N = a->N, panels = (N + KILN_PANEL - 1) / KILN_PANEL;
  for (int64_t q = q0; q < q1; ++q) {
    int64_t p = 2 * q;
    const PANEL_ELEM *pa = a->w + p * K * KILN_PANEL;
    const PANEL_ELEM *pb = p + 1 < panels ? pa + K * KILN_PANEL : 0;
    int64_t n0 = p * KILN_PANEL;
    int64_t nna = KILN_MIN(KILN_PANEL, N - n0), nnb = pb ? KILN_MIN(KILN_PANEL, N - n0 - KILN_PANEL) : 0;
#ifdef PANEL_WIDEN_COSTLY
    /* Widening a panel row costs as many FMA-port uops as the row's FMAs at
     * R = 2: past 4 rows, one panel at a time for up to 8 rows per pass
     * (the same per-row sums: a panel alone accumulates as the second of a
     * pair does). */
    if (a->M > 4 && a->M <= KILN_DECODE_MAX_ROWS) {
      for (int64_t m0 = 0; m0 < a->M; m0 += 8)
        for (int half = 0; half < (pb ? 2 : 1); ++half) {
          const PANEL_ELEM *pp = half ? pb : pa;
          int64_t nx = half ? n0 + KILN_PANEL : n0, nnx = half ? nnb : nna;
          switch (KILN_MIN(8, a->M - m0)) {
          case 8: panel_gemv(a, pp, 0, m0, 8, nx, nnx, 0); break;
          case 7: panel_gemv(a, pp, 0, m0, 7, nx, nnx, 0); break;
          case 6: panel_gemv(a, pp, 0, m0, 6, nx, nnx, 0); break;
          case 5: panel_gemv(a, pp, 0, m0, 5, nx, nnx, 0); break;
          case 4: panel_gemv(a, pp, 0, m0, 4, nx, nnx, 0); break;
          case 3: panel_gemv(a, pp, 0, m0, 3, nx, nnx, 0); break;
          case 2: panel_gemv(a, pp, 0, m0, 2, nx, nnx, 0); break;
          case 1: panel_gemv(a, pp, 0, m0, 1, nx, nnx, 0); break;
          }
        }
      continue;
    }
#endif
    if (a->M <= KILN_DECODE_MAX_ROWS) { /* decode, batched or not: R constant in each call */
      int64_t m0 = 0;
      for (; m0 + 4 <= a->M; m0 += 4)
        panel_gemv(a, pa, pb, m0, 4, n0, nna, nnb);
      switch (a->M - m0) {
      case 3: panel_gemv(a, pa, pb, m0, 3, n0, nna, nnb); break;
      case 2: panel_gemv(a, pa, pb, m0, 2, n0, nna, nnb); break;
      case 1: panel_gemv(a, pa, pb, m0, 1, n0, nna, nnb); break;
      }
      continue;
    }
    for (int64_t m0 = 0; m0 < a->M; m0 += MR)
      panel_block_any(a, pa, pb, m0, KILN_MIN(MR, a->M - m0), n0, nna, nnb);
  }
}
