/*===- LinearQ4.c - linear kernel for int4 group-wise weights -------------===*
 * Compiled once per variant (KILN_VARIANT); plain C whose 16-wide inner
 * loops the compiler vectorises for the variant's ISA. LinearQ4AVX512.c is
 * the hand-written AVX-512 form of the same algorithm.
 *
 * Layout "q4" (see KernelABI.h): one row of K/2 bytes per output channel;
 * every 32 inputs k0..k0+31 take 16 bytes, byte i holding k0+i in its low
 * nibble and k0+16+i in its high nibble. Params: per channel per group of G
 * inputs, {scale, zero} as floats. An element dequantizes to
 * (u - zero) * scale, in float32 exactly as the reference does (symmetric
 * weights are stored as u = q + 8 with zero 8). The weights are never
 * expanded in memory: each chunk of 32 is dequantized in registers and
 * reused for every row of the block.
 *===----------------------------------------------------------------------===*/
#include "KernelCommon.h"

#define KILN_CAT2(a, b) a##b
#define KILN_CAT(a, b) KILN_CAT2(a, b)
#define KILN_FN(name) KILN_CAT(name##_, KILN_VARIANT)

#define MR 4
#define NR 4

static void q4_task(void *arg, int64_t b0, int64_t b1) {
  const Q4Args *a = (const Q4Args *)arg;
  const int64_t K = a->K, N = a->N, G = a->G, groups = (K + G - 1) / G, rowBytes = K / 2;
  for (int64_t blk = b0; blk < b1; ++blk) {
    int64_t n0 = blk * NR, nn = KILN_MIN(NR, N - n0);
    for (int64_t m0 = 0; m0 < a->M; m0 += MR) {
      int64_t mr = KILN_MIN(MR, a->M - m0);
      float acc[MR][NR][16] = {{{0}}};
      for (int64_t g = 0; g < groups; ++g)
        for (int64_t c = 0; c < nn; ++c) {
          const float *param = a->params + ((n0 + c) * groups + g) * 2;
          const float scale = param[0], zero = param[1];
          for (int64_t k0 = g * G; k0 < KILN_MIN(K, (g + 1) * G); k0 += 32) {
            const uint8_t *bytes = a->w + (n0 + c) * rowBytes + k0 / 2;
            float lo[16], hi[16];
            for (int i = 0; i < 16; ++i) {
              lo[i] = ((float)(bytes[i] & 15) - zero) * scale;
              hi[i] = ((float)(bytes[i] >> 4) - zero) * scale;
            }
            for (int64_t r = 0; r < mr; ++r) {
              const float *x = a->x + (m0 + r) * K + k0;
              for (int i = 0; i < 16; ++i)
                acc[r][c][i] += x[i] * lo[i] + x[16 + i] * hi[i];
            }
          }
        }
      for (int64_t r = 0; r < mr; ++r)
        for (int64_t c = 0; c < nn; ++c) {
          float sum = 0;
          for (int i = 0; i < 16; ++i)
            sum += acc[r][c][i];
          a->y[(m0 + r) * N + n0 + c] = sum + (a->bias ? a->bias[n0 + c] : 0.0f);
        }
    }
  }
}

void KILN_FN(kiln_linear_q4)(const KilnRuntimeContext *rt, const float *x, const uint8_t *w, const float *params,
                             const float *bias, float *y, int64_t M, int64_t K, int64_t N, int64_t G) {
  Q4Args a = {x, w, params, bias, y, M, K, N, G};
  kiln_parallel(rt, (N + NR - 1) / NR, q4_task, &a);
}
