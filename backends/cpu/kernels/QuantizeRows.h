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
    const float scale = a->static_scale > 0 ? a->static_scale : kiln_q8_row_scale(x, K);
    a->scales[r] = scale;
    const int64_t chunks = (K + 31) / 32;
    for (int64_t c = 0; c < chunks; ++c) {
      int32_t sum = 0;
      if (32 * c + 32 <= K) { /* a constant trip count: vectorised (a variable one of 32 was not) */
        for (int i = 0; i < 32; ++i) {
          int32_t v = kiln_q8_value(x[32 * c + i], scale);
          sum += v;
          q[32 * c + i] = (int8_t)(v + KILN_XQ_OFFSET);
        }
      } else {
        for (int64_t k = 32 * c; k < K; ++k) {
          int32_t v = kiln_q8_value(x[k], scale);
          sum += v;
          q[k] = (int8_t)(v + KILN_XQ_OFFSET);
        }
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
