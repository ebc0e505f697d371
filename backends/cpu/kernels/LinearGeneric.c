/*===- LinearGeneric.c - reference linear kernel (any ISA) ----------------===*/
#include "KernelCommon.h"

static void linear_task(void *arg, int64_t p0, int64_t p1) {
  const LinearArgs *a = (const LinearArgs *)arg;
  for (int64_t p = p0; p < p1; ++p) {
    const float *panel = a->w + p * a->K * KILN_PANEL;
    int64_t n0 = p * KILN_PANEL, nn = KILN_MIN(KILN_PANEL, a->N - n0);
    for (int64_t m = 0; m < a->M; ++m) {
      float acc[KILN_PANEL] = {0};
      const float *xr = a->x + m * a->K;
      for (int64_t k = 0; k < a->K; ++k)
        for (int j = 0; j < KILN_PANEL; ++j)
          acc[j] += xr[k] * panel[k * KILN_PANEL + j];
      float *yr = a->y + m * a->N + n0;
      for (int64_t j = 0; j < nn; ++j)
        yr[j] = acc[j] + (a->bias ? a->bias[n0 + j] : 0.0f);
    }
  }
}

void kiln_linear_generic(const KilnRuntimeContext *rt, const float *x, const float *w, const float *bias, float *y,
                         int64_t M, int64_t K, int64_t N) {
  LinearArgs a = {x, w, bias, y, M, K, N};
  kiln_parallel(rt, (N + KILN_PANEL - 1) / KILN_PANEL, linear_task, &a);
}
