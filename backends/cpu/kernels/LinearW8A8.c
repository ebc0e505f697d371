/*===- LinearW8A8.c - int8 x int8 linear kernel (portable) ----------------===*
 * Compiled once per variant (KILN_VARIANT); plain C whose integer inner
 * loops the compiler vectorises. LinearW8A8VNNI.c is the AVX-512 VNNI form.
 *
 * Layout "panel16_q8x4": ceil(N/16) panels of [Kp/4][16][4] int8 (Kp =
 * round_up(K, 4), zero padded): the 4 consecutive inputs of one output are
 * adjacent, the shape integer dot-product instructions read.
 * y[m, n] = float(sum_k xq[m, k] * wq[k, n]) * (xscale[m] * wscale[n]) + bias[n]
 *===----------------------------------------------------------------------===*/
#define KILN_XQ_OFFSET 0
#include "QuantizeRows.h"

#define KILN_CAT2(a, b) a##b
#define KILN_CAT(a, b) KILN_CAT2(a, b)
#define KILN_FN(name) KILN_CAT(name##_, KILN_VARIANT)

#define MR 4

static void w8a8_task(void *arg, int64_t p0, int64_t p1) {
  const W8A8Args *a = (const W8A8Args *)arg;
  const int64_t Kp = kiln_pad4(a->K), N = a->N;
  for (int64_t p = p0; p < p1; ++p) {
    const int8_t *panel = a->w + p * Kp * KILN_PANEL;
    const int64_t n0 = p * KILN_PANEL, nn = KILN_MIN(KILN_PANEL, N - n0);
    for (int64_t m0 = 0; m0 < a->M; m0 += MR) {
      const int64_t mr = KILN_MIN(MR, a->M - m0);
      int32_t acc[MR][KILN_PANEL] = {{0}};
      for (int64_t k4 = 0; k4 < Kp / 4; ++k4) {
        const int8_t *wq = panel + k4 * 4 * KILN_PANEL;
        for (int64_t i = 0; i < mr; ++i) {
          const int8_t *xq = a->xq + (m0 + i) * Kp + 4 * k4;
          for (int j = 0; j < KILN_PANEL; ++j)
            acc[i][j] += xq[0] * wq[4 * j] + xq[1] * wq[4 * j + 1] + xq[2] * wq[4 * j + 2] + xq[3] * wq[4 * j + 3];
        }
      }
      for (int64_t i = 0; i < mr; ++i) {
        float *yr = a->y + (m0 + i) * N + n0;
        for (int64_t j = 0; j < nn; ++j)
          yr[j] = (float)acc[i][j] * (a->xscale[m0 + i] * a->wscale[n0 + j]) + (a->bias ? a->bias[n0 + j] : 0.0f);
      }
    }
  }
}

void KILN_FN(kiln_quantize_rows)(const KilnRuntimeContext *rt, const float *x, int64_t M, int64_t K,
                                 float static_scale, int8_t *xq, float *scales, int32_t *xsums) {
  kiln_quantize_rows_impl(rt, x, M, K, static_scale, xq, scales, xsums);
}

void KILN_FN(kiln_linear_w8a8)(const KilnRuntimeContext *rt, const int8_t *xq, const float *xscale, const int8_t *w,
                               const float *wscale, const int32_t *wsum, const float *bias, float *y, int64_t M,
                               int64_t K, int64_t N) {
  W8A8Args a = {xq, xscale, w, wscale, wsum, bias, y, M, K, N};
  kiln_parallel(rt, (N + KILN_PANEL - 1) / KILN_PANEL, w8a8_task, &a);
}
