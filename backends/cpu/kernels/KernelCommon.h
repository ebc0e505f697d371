/*===- KernelCommon.h - helpers shared by every kernel variant -------------===*/
#ifndef KILN_KERNEL_COMMON_H
#define KILN_KERNEL_COMMON_H

#include "KernelABI.h"

#include <stddef.h>

#define KILN_MIN(a, b) ((a) < (b) ? (a) : (b))
#define KILN_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Arguments of one linear call, handed to the per-thread tasks. */
typedef struct LinearArgs {
  const float *x, *w, *bias;
  float *y;
  int64_t M, K, N;
} LinearArgs;

/* Arguments of one int8 linear call (the LinearQ8*.c kernels). */
typedef struct Q8Args {
  const float *x;
  const int8_t *w;
  const float *scale, *bias;
  float *y;
  int64_t M, K, N;
} Q8Args;

/* Arguments of one int4 group-wise linear call (the LinearQ4*.c kernels). */
typedef struct Q4Args {
  const float *x;
  const uint8_t *w;
  const float *params, *bias;
  float *y;
  int64_t M, K, N, G;
} Q4Args;

/* Arguments of one W8A8 linear call (the LinearW8A8*.c kernels). */
typedef struct W8A8Args {
  const int8_t *xq;
  const float *xscale;
  const int8_t *w;
  const float *wscale;
  const int32_t *wsum;
  const float *bias;
  float *y;
  int64_t M, K, N;
} W8A8Args;

/* Arguments of one W4A8 linear call (the LinearW4A8*.c kernels). */
typedef struct W4A8Args {
  const int8_t *xq;
  const float *xscale;
  const int32_t *xsums;
  const uint8_t *w;
  const float *scales;
  const int32_t *zeros;
  const float *bias;
  float *y;
  int64_t M, K, N, G;
} W4A8Args;

/* Symmetric int8 quantization of a row, exactly quantizeActivationRow of
 * include/kiln/Quant/Quant.h in float32 (activations and the int8 KV cache
 * share it). The scale: max|x| / 127 (16 partial maxima, a float reduction
 * the compiler may vectorise). */
static inline float kiln_q8_row_scale(const float *x, int64_t n) {
  float part[16] = {0}, amax = 0;
  int64_t k = 0;
  for (; k + 16 <= n; k += 16)
    for (int i = 0; i < 16; ++i) {
      float v = __builtin_fabsf(x[k + i]);
      part[i] = v > part[i] ? v : part[i];
    }
  for (; k < n; ++k) {
    float v = x[k] < 0 ? -x[k] : x[k];
    amax = v > amax ? v : amax;
  }
  for (int i = 0; i < 16; ++i)
    amax = part[i] > amax ? part[i] : amax;
  return amax / 127.0f;
}
/* q = clamp(rne(v / scale), -127, 127), 0 for a scale of 0. Rounds half to
 * even without libm: adding 1.5 * 2^23 leaves the integer in the mantissa. */
static inline int32_t kiln_q8_value(float v, float scale) {
  float r = scale == 0 ? 0.0f : v / scale;
  r = r < -127.0f ? -127.0f : r > 127.0f ? 127.0f : r;
  return (int32_t)((r + 12582912.0f) - 12582912.0f);
}

/* The per-row scales of an int8 KV cache buffer, after its [H][C][D] bytes. */
static inline int64_t kiln_cache_q8_data_bytes(int64_t H, int64_t C, int64_t D) { return (H * C * D + 63) / 64 * 64; }
static inline const float *kiln_cache_scales(const void *cache, int64_t H, int64_t C, int64_t D) {
  return (const float *)((const char *)cache + kiln_cache_q8_data_bytes(H, C, D));
}
static inline float *kiln_cache_scales_mut(void *cache, int64_t H, int64_t C, int64_t D) {
  return (float *)((char *)cache + kiln_cache_q8_data_bytes(H, C, D));
}

/* Runs fn over [0, n) on the runtime's pool (or inline without one). */
static inline void kiln_parallel(const KilnRuntimeContext *rt, int64_t n, KilnTaskFn fn, void *arg) {
  if (rt && rt->parallel_for && rt->threads > 1 && n > 1)
    rt->parallel_for(rt->pool, n, fn, arg);
  else
    fn(arg, 0, n);
}

/* f32 -> bf16, round to nearest even, as vcvtne2ps2bf16 does: denormal
 * inputs become (signed) zero, NaNs stay NaN (quiet). Branch-free, so loops
 * of it vectorise. */
static inline uint16_t kiln_round_bf16(float f) {
  union {
    float f;
    uint32_t u;
  } v = {f};
  uint32_t u = v.u, rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  uint32_t r = (u & 0x7f800000u) == 0 ? (u >> 16) & 0x8000u : rounded;
  r = (u & 0x7fffffffu) > 0x7f800000u ? (u >> 16) | 0x40u : r;
  return (uint16_t)r;
}

/* kiln_exp_nonpositive: exp for x <= 0, shared with the distillation loss. */
#include "kiln/Support/ExpNonPositive.h"

#endif
