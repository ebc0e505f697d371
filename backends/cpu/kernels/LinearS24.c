/*===- LinearS24.c - linear kernel for 2:4 sparse f32 weights (portable) --===*
 * Compiled once per variant (KILN_VARIANT); LinearS24AVX512.c is the AVX-512
 * form. Layout "s24" (KernelABI.h): per panel of 16 outputs and group of 4
 * inputs, the (at most) 2 nonzero weights of each output as two rows of 16
 * floats and their positions in the group as one byte per output
 * (i0 | i1 << 2): 144 bytes where a dense panel takes 256.
 *===----------------------------------------------------------------------===*/
#include "KernelCommon.h"

#define KILN_CAT2(a, b) a##b
#define KILN_CAT(a, b) KILN_CAT2(a, b)
#define KILN_FN(name) KILN_CAT(name##_, KILN_VARIANT)

#define MR 4

static void s24_task(void *arg, int64_t p0, int64_t p1) {
  const LinearArgs *a = (const LinearArgs *)arg;
  const int64_t K = a->K, N = a->N, G = (K + 3) / 4;
  const uint8_t *base = (const uint8_t *)a->w;
  for (int64_t p = p0; p < p1; ++p) {
    const uint8_t *panel = base + p * G * KILN_S24_GROUP_BYTES;
    const int64_t n0 = p * KILN_PANEL, nn = KILN_MIN(KILN_PANEL, N - n0);
    for (int64_t m0 = 0; m0 < a->M; m0 += MR) {
      const int64_t mr = KILN_MIN(MR, a->M - m0);
      float acc[MR][KILN_PANEL] = {{0}};
      for (int64_t g = 0; g < G; ++g) {
        const float *v0 = (const float *)(panel + g * KILN_S24_GROUP_BYTES), *v1 = v0 + KILN_PANEL;
        const uint8_t *pos = (const uint8_t *)(v1 + KILN_PANEL);
        for (int64_t r = 0; r < mr; ++r) {
          const float *x = a->x + (m0 + r) * K + 4 * g;
          float xg[4] = {0, 0, 0, 0};
          for (int t = 0; t < 4 && 4 * g + t < K; ++t)
            xg[t] = x[t];
          for (int j = 0; j < KILN_PANEL; ++j)
            acc[r][j] += v0[j] * xg[pos[j] & 3] + v1[j] * xg[pos[j] >> 2];
        }
      }
      for (int64_t r = 0; r < mr; ++r)
        for (int64_t j = 0; j < nn; ++j)
          a->y[(m0 + r) * N + n0 + j] = acc[r][j] + (a->bias ? a->bias[n0 + j] : 0.0f);
    }
  }
}

void KILN_FN(kiln_linear_s24)(const KilnRuntimeContext *rt, const float *x, const float *w, const float *bias,
                              float *y, int64_t M, int64_t K, int64_t N) {
  LinearArgs a = {x, w, bias, y, M, K, N};
  kiln_parallel(rt, (N + KILN_PANEL - 1) / KILN_PANEL, s24_task, &a);
}
