/*===- QuantizeRows.h - int8 activation quantization (W8A8) ---------------===*
 * Included by the W8A8 kernels. Exactly quantizeActivationRow of
 * include/kiln/Quant/Quant.h in float32: scale = static_scale, or max|x| / 127
 * per row; q = clamp(rne(x / scale), -127, 127). Rows are stored Kp =
 * round_up(K, 4) bytes apart, zero padded, as q + KILN_XQ_OFFSET (0, or 128
 * for kernels whose dot product multiplies unsigned by signed bytes). With
 * xsums, also the sum of q over each 32 inputs: [M][ceil(K / 32)] (W4A8
 * subtracts zero points with them).
 *===----------------------------------------------------------------------===*/
#ifndef KILN_QUANTIZE_ROWS_H
#define KILN_QUANTIZE_ROWS_H

#include "KernelCommon.h"

typedef struct QuantizeRowsArgs {
  const float *x;
  int64_t K;
  float static_scale;
  int8_t *xq;
  float *scales;
  int32_t *xsums;
} QuantizeRowsArgs;

static inline int64_t kiln_pad4(int64_t k) { return (k + 3) & ~(int64_t)3; }

static void quantize_rows_task(void *arg, int64_t r0, int64_t r1) {
  const QuantizeRowsArgs *a = (const QuantizeRowsArgs *)arg;
  const int64_t K = a->K, Kp = kiln_pad4(K);
  for (int64_t r = r0; r < r1; ++r) {
    const float *x = a->x + r * K;
    int8_t *q = a->xq + r * Kp;
    float scale = a->static_scale;
    if (!(scale > 0)) {
      /* 16 partial maxima: a float reduction the compiler may vectorise. */
      float part[16] = {0}, amax = 0;
      int64_t k = 0;
      for (; k + 16 <= K; k += 16)
        for (int i = 0; i < 16; ++i) {
          float v = x[k + i] < 0 ? -x[k + i] : x[k + i];
          part[i] = v > part[i] ? v : part[i];
        }
      for (; k < K; ++k) {
        float v = x[k] < 0 ? -x[k] : x[k];
        amax = v > amax ? v : amax;
      }
      for (int i = 0; i < 16; ++i)
        amax = part[i] > amax ? part[i] : amax;
      scale = amax / 127.0f;
    }
    a->scales[r] = scale;
    const int64_t chunks = (K + 31) / 32;
    for (int64_t c = 0; c < chunks; ++c) {
      int32_t sum = 0;
      for (int64_t k = 32 * c; k < KILN_MIN(K, 32 * c + 32); ++k) {
        float v = scale == 0 ? 0.0f : x[k] / scale;
        v = v < -127.0f ? -127.0f : v > 127.0f ? 127.0f : v;
        /* Round half to even without libm: adding 1.5 * 2^23 leaves the
         * rounded integer in the mantissa (|v| <= 127). */
        v = (v + 12582912.0f) - 12582912.0f;
        sum += (int32_t)v;
        q[k] = (int8_t)((int32_t)v + KILN_XQ_OFFSET);
      }
      if (a->xsums)
        a->xsums[r * chunks + c] = sum;
    }
    for (int64_t k = K; k < Kp; ++k)
      q[k] = (int8_t)KILN_XQ_OFFSET;
  }
}

static inline void kiln_quantize_rows_impl(const KilnRuntimeContext *rt, const float *x, int64_t M, int64_t K,
                                           float static_scale, int8_t *xq, float *scales, int32_t *xsums) {
  QuantizeRowsArgs a = {x, K, static_scale, xq, scales, xsums};
  kiln_parallel(rt, M, quantize_rows_task, &a);
}

#endif
