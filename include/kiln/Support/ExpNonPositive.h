/*===- ExpNonPositive.h - a vectorisable exp for softmax rows --------------===*/
/* C and C++: the cpu kernels (freestanding C, compiled to bitcode) and the   */
/* knowledge-distillation loss (passes/distill/kd) share it.                  */
/*===----------------------------------------------------------------------===*/
#ifndef KILN_SUPPORT_EXPNONPOSITIVE_H
#define KILN_SUPPORT_EXPNONPOSITIVE_H

#include <stdint.h>

/* exp for x <= 0 (softmax after max subtraction): Cody-Waite range reduction
 * and a degree-6 polynomial, about 1 ulp, written so loops over it vectorise. */
static inline float kiln_exp_nonpositive(float x) {
  if (x < -87.0f)
    return 0.0f;
  const float log2e = 1.44269504088896341f, ln2hi = 0.693359375f, ln2lo = -2.12194440e-4f;
  /* Round to nearest without a libm call: adding 1.5 * 2^23 leaves the
   * integer part in the mantissa (|x * log2e| < 2^22 here). */
  float n = (x * log2e + 12582912.0f) - 12582912.0f;
  float r = x - n * ln2hi - n * ln2lo;
  float p = 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  int32_t bits = ((int32_t)n + 127) << 23; /* 2^n: n is in -126..0 */
  float scale;
  __builtin_memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

#endif
