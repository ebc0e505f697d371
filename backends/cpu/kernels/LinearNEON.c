/*===- LinearNEON.c - linear kernel for AArch64 NEON ----------------------===*
 * A panel row is four q registers; MR = 4 rows give 16 accumulators.
 *===----------------------------------------------------------------------===*/
#include "KernelCommon.h"

#include <arm_neon.h>

#define MR 4

static void linear_task(void *arg, int64_t p0, int64_t p1) {
  const LinearArgs *a = (const LinearArgs *)arg;
  const int64_t K = a->K, N = a->N;
  for (int64_t p = p0; p < p1; ++p) {
    const float *panel = a->w + p * K * KILN_PANEL;
    int64_t n0 = p * KILN_PANEL, nn = KILN_MIN(KILN_PANEL, N - n0);
    for (int64_t m0 = 0; m0 < a->M; m0 += MR) {
      int64_t mr = KILN_MIN(MR, a->M - m0);
      float32x4_t acc[MR][4];
      for (int i = 0; i < MR; ++i)
        for (int j = 0; j < 4; ++j)
          acc[i][j] = vdupq_n_f32(0.0f);
      for (int64_t k = 0; k < K; ++k) {
        const float *wr = panel + k * KILN_PANEL;
        float32x4_t w0 = vld1q_f32(wr), w1 = vld1q_f32(wr + 4), w2 = vld1q_f32(wr + 8), w3 = vld1q_f32(wr + 12);
        for (int i = 0; i < mr; ++i) {
          float xv = a->x[(m0 + i) * K + k];
          acc[i][0] = vfmaq_n_f32(acc[i][0], w0, xv);
          acc[i][1] = vfmaq_n_f32(acc[i][1], w1, xv);
          acc[i][2] = vfmaq_n_f32(acc[i][2], w2, xv);
          acc[i][3] = vfmaq_n_f32(acc[i][3], w3, xv);
        }
      }
      for (int i = 0; i < mr; ++i) {
        float out[KILN_PANEL];
        for (int j = 0; j < 4; ++j)
          vst1q_f32(out + 4 * j, acc[i][j]);
        float *yr = a->y + (m0 + i) * N + n0;
        for (int64_t j = 0; j < nn; ++j)
          yr[j] = out[j] + (a->bias ? a->bias[n0 + j] : 0.0f);
      }
    }
  }
}

void kiln_linear_neon(const KilnRuntimeContext *rt, const float *x, const float *w, const float *bias, float *y,
                      int64_t M, int64_t K, int64_t N) {
  LinearArgs a = {x, w, bias, y, M, K, N};
  kiln_parallel(rt, (N + KILN_PANEL - 1) / KILN_PANEL, linear_task, &a);
}
