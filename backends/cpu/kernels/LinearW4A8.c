/*===- LinearW4A8.c - int4 weight x int8 activation linear (portable) -----===*
 * Compiled once per variant (KILN_VARIANT); plain C whose integer inner
 * loops the compiler vectorises. LinearW4A8VNNI.c is the AVX-512 VNNI form.
 *
 * Layout "q4x4": ceil(N/16) panels; each 32 inputs k0.. of a panel are 256
 * bytes, four blocks of 64: in block v, byte j*4 + t holds input k0+8v+t of
 * output j in its low nibble and k0+8v+4+t in its high nibble (the quads of
 * inputs dot-product instructions read). Nibbles u are unsigned; a weight
 * is (u - zero) * scale with per-group scales [panels][groups][16] floats
 * and zero points [panels][groups][16] int32 (null: symmetric, zero 8).
 * Per group: dot = sum_k u * xq - zero * sum_k xq, exact in int32;
 * y = sum_groups float(dot) * scale * xscale + bias.
 *===----------------------------------------------------------------------===*/
#define KILN_XQ_OFFSET 0
#include "QuantizeRows.h"

#define KILN_CAT2(a, b) a##b
#define KILN_CAT(a, b) KILN_CAT2(a, b)
#define KILN_FN(name) KILN_CAT(name##_, KILN_VARIANT)

#define MR 4

static void w4a8_task(void *arg, int64_t p0, int64_t p1) {
  const W4A8Args *a = (const W4A8Args *)arg;
  const int64_t K = a->K, N = a->N, Kp = kiln_pad4(K), chunks = K / 32, G = a->G, groups = (K + G - 1) / G;
  for (int64_t p = p0; p < p1; ++p) {
    const uint8_t *panel = a->w + p * chunks * 256;
    const float *scales = a->scales + p * groups * KILN_PANEL;
    const int32_t *zeros = a->zeros ? a->zeros + p * groups * KILN_PANEL : 0;
    const int64_t n0 = p * KILN_PANEL, nn = KILN_MIN(KILN_PANEL, N - n0);
    for (int64_t m0 = 0; m0 < a->M; m0 += MR) {
      const int64_t mr = KILN_MIN(MR, a->M - m0);
      float facc[MR][KILN_PANEL] = {{0}};
      for (int64_t g = 0; g < groups; ++g) {
        const int64_t c0 = g * (G / 32), c1 = KILN_MIN(chunks, c0 + G / 32);
        int32_t iacc[MR][KILN_PANEL] = {{0}};
        for (int64_t c = c0; c < c1; ++c)
          for (int v = 0; v < 4; ++v) {
            const uint8_t *blk = panel + c * 256 + v * 64;
            for (int64_t i = 0; i < mr; ++i) {
              const int8_t *x = a->xq + (m0 + i) * Kp + 32 * c + 8 * v;
              for (int j = 0; j < KILN_PANEL; ++j)
                for (int t = 0; t < 4; ++t)
                  iacc[i][j] += (blk[4 * j + t] & 15) * x[t] + (blk[4 * j + t] >> 4) * x[4 + t];
            }
          }
        for (int64_t i = 0; i < mr; ++i) {
          int32_t xsum = 0;
          for (int64_t c = c0; c < c1; ++c)
            xsum += a->xsums[(m0 + i) * chunks + c];
          for (int j = 0; j < KILN_PANEL; ++j) {
            int32_t zero = zeros ? zeros[g * KILN_PANEL + j] : 8;
            facc[i][j] += (float)(iacc[i][j] - zero * xsum) * scales[g * KILN_PANEL + j];
          }
        }
      }
      for (int64_t i = 0; i < mr; ++i) {
        float *yr = a->y + (m0 + i) * N + n0;
        for (int64_t j = 0; j < nn; ++j)
          yr[j] = facc[i][j] * a->xscale[m0 + i] + (a->bias ? a->bias[n0 + j] : 0.0f);
      }
    }
  }
}

void KILN_FN(kiln_linear_w4a8)(const KilnRuntimeContext *rt, const int8_t *xq, const float *xscale,
                               const int32_t *xsums, const uint8_t *w, const float *scales, const int32_t *zeros,
                               const float *bias, float *y, int64_t M, int64_t K, int64_t N, int64_t G) {
  W4A8Args a = {xq, xscale, xsums, w, scales, zeros, bias, y, M, K, N, G};
  kiln_parallel(rt, (N + KILN_PANEL - 1) / KILN_PANEL, w4a8_task, &a);
}
