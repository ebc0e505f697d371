/*===- PanelsAVX2.h - the panel kernel of f32 and int8 weights, AVX2 + FMA -===*
 * Included by LinearAVX2.c and LinearQ8AVX2.c, which differ only in how
 * 8 values of a panel row become a ymm of floats and how a finished row is
 * stored. Before including, they define:
 *   PANEL_ELEM, PANEL_ARGS, PANEL_TASK   element type, argument struct, task name
 *   panel_widen(p)                       8 stored values -> ymm
 *   panel_finish(a, out, yr, n0, nn)     stores outputs n0..n0+nn of a row
 *                                        from its 16 sums `out`
 * A panel row is two ymm vectors; MR = 6 rows give 12 accumulators.
 *===----------------------------------------------------------------------===*/
#define MR 6

static void PANEL_TASK(void *arg, int64_t p0, int64_t p1) {
  const PANEL_ARGS *a = (const PANEL_ARGS *)arg;
  const int64_t K = a->K, N = a->N;
  for (int64_t p = p0; p < p1; ++p) {
    const PANEL_ELEM *panel = a->w + p * K * KILN_PANEL;
    int64_t n0 = p * KILN_PANEL, nn = KILN_MIN(KILN_PANEL, N - n0);
    for (int64_t m0 = 0; m0 < a->M; m0 += MR) {
      int64_t mr = KILN_MIN(MR, a->M - m0);
      __m256 acc[MR][2];
      for (int i = 0; i < MR; ++i)
        acc[i][0] = acc[i][1] = _mm256_setzero_ps();
      const float *x = a->x + m0 * K;
      if (mr == MR) {
        for (int64_t k = 0; k < K; ++k) {
          __m256 w0 = panel_widen(panel + k * KILN_PANEL), w1 = panel_widen(panel + k * KILN_PANEL + 8);
          for (int i = 0; i < MR; ++i) {
            __m256 xv = _mm256_broadcast_ss(x + i * K + k);
            acc[i][0] = _mm256_fmadd_ps(xv, w0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(xv, w1, acc[i][1]);
          }
        }
      } else {
        for (int64_t k = 0; k < K; ++k) {
          __m256 w0 = panel_widen(panel + k * KILN_PANEL), w1 = panel_widen(panel + k * KILN_PANEL + 8);
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
        panel_finish(a, out, a->y + (m0 + i) * N + n0, n0, nn);
      }
    }
  }
}
