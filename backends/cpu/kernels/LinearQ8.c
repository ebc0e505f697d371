/*===- LinearQ8.c - linear kernel for int8 per-channel weights ------------===*
 * Compiled once per variant (KILN_VARIANT): plain C whose 16-wide inner
 * loops the compiler vectorises for the variant's ISA (sign-extend, convert,
 * fused multiply-add). Weights never exist as f32 in memory: each panel row
 * of 16 int8 values is widened in registers, and the per-channel scale is
 * applied once to the accumulated sums.
 *
 * Layout "panel16_q8": ceil(N/16) panels of [K][16] int8 (zero padded);
 * scales: ceil(N/16) * 16 floats.
 *===----------------------------------------------------------------------===*/
#include "KernelCommon.h"

#define KILN_CAT2(a, b) a##b
#define KILN_CAT(a, b) KILN_CAT2(a, b)
#define KILN_FN(name) KILN_CAT(name##_, KILN_VARIANT)

#define MR 4

static void q8_task(void *arg, int64_t p0, int64_t p1) {
  const Q8Args *a = (const Q8Args *)arg;
  const int64_t K = a->K, N = a->N;
  for (int64_t p = p0; p < p1; ++p) {
    const int8_t *panel = a->w + p * K * KILN_PANEL;
    const float *scale = a->scale + p * KILN_PANEL;
    int64_t n0 = p * KILN_PANEL, nn = KILN_MIN(KILN_PANEL, N - n0);
    for (int64_t m0 = 0; m0 < a->M; m0 += MR) {
      int64_t mr = KILN_MIN(MR, a->M - m0);
      float acc[MR][KILN_PANEL] = {{0}};
      if (mr == MR) {
        for (int64_t k = 0; k < K; ++k) {
          const int8_t *row = panel + k * KILN_PANEL;
          for (int i = 0; i < MR; ++i) {
            float xv = a->x[(m0 + i) * K + k];
            for (int j = 0; j < KILN_PANEL; ++j)
              acc[i][j] += xv * (float)row[j];
          }
        }
      } else {
        for (int64_t k = 0; k < K; ++k) {
          const int8_t *row = panel + k * KILN_PANEL;
          for (int i = 0; i < mr; ++i) {
            float xv = a->x[(m0 + i) * K + k];
            for (int j = 0; j < KILN_PANEL; ++j)
              acc[i][j] += xv * (float)row[j];
          }
        }
      }
      for (int i = 0; i < mr; ++i) {
        float *yr = a->y + (m0 + i) * N + n0;
        for (int64_t j = 0; j < nn; ++j)
          yr[j] = acc[i][j] * scale[j] + (a->bias ? a->bias[n0 + j] : 0.0f);
      }
    }
  }
}

void KILN_FN(kiln_linear_q8)(const KilnRuntimeContext *rt, const float *x, const int8_t *w, const float *scale,
                             const float *bias, float *y, int64_t M, int64_t K, int64_t N) {
  Q8Args a = {x, w, scale, bias, y, M, K, N};
  kiln_parallel(rt, (N + KILN_PANEL - 1) / KILN_PANEL, q8_task, &a);
}
