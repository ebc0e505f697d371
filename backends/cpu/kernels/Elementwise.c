/*===- Elementwise.c - element-wise kernels the graph calls ---------------===*
 * Compiled once per variant (KILN_VARIANT), plain C written to vectorise for
 * the variant's ISA. The generated loops they replace ran one element at a
 * time (MLIR's polynomial tanh does not vectorise in them): GELU was 13% of a
 * GPT-2 124M prefill.
 *===----------------------------------------------------------------------===*/
#include "KernelCommon.h"

#define KILN_CAT2(a, b) a##b
#define KILN_CAT(a, b) KILN_CAT2(a, b)
#define KILN_FN(name) KILN_CAT(name##_, KILN_VARIANT)

/* Elements per task: decode's 3072 run inline, prefill's rows spread. */
#define KILN_GELU_CHUNK 8192

typedef struct GeluArgs {
  const float *x;
  float *y;
  int64_t n;
  uint16_t *yb;
} GeluArgs;

/* gelu(v) = 0.5 v (1 + tanh(u)), u = sqrt(2/pi) (v + 0.044715 v^3), as
 * v * sigmoid(2u) with the exponential of a non-positive argument only: no
 * overflow, and no cancellation for either sign of u. */
static inline float gelu_tanh_value(float v) {
  float u = 0.7978845608028654f * (v + 0.044715f * (v * v * v));
  float e = kiln_exp_nonpositive(u < 0 ? 2.0f * u : -2.0f * u);
  float s = (u < 0 ? e : 1.0f) / (1.0f + e);
  return v * s;
}

static void gelu_tanh_task(void *arg, int64_t c0, int64_t c1) {
  const GeluArgs *a = (const GeluArgs *)arg;
  const int64_t begin = c0 * KILN_GELU_CHUNK, end = KILN_MIN(a->n, c1 * KILN_GELU_CHUNK);
  /* y may be x (in place): element i reads only x[i] before writing y[i], so
   * vectorising is safe; without the pragma the overlap check chose the scalar
   * loop (5 ns an element). */
  if (a->yb) { /* the input of a product computed in bf16 */
    for (int64_t i = begin; i < end; ++i)
      a->yb[i] = kiln_round_bf16(gelu_tanh_value(a->x[i]));
    return;
  }
#pragma clang loop vectorize(assume_safety)
  for (int64_t i = begin; i < end; ++i)
    a->y[i] = gelu_tanh_value(a->x[i]);
}

void KILN_FN(kiln_gelu_tanh)(const KilnRuntimeContext *rt, const float *x, float *y, int64_t n, uint16_t *y_bf16) {
  GeluArgs a = {x, y, n, y_bf16};
  kiln_parallel(rt, (n + KILN_GELU_CHUNK - 1) / KILN_GELU_CHUNK, gelu_tanh_task, &a);
}

typedef struct LayerNormArgs {
  const float *x, *residual, *gamma, *beta;
  float *sum, *out;
  uint16_t *outb;
  int64_t xs, rs, ss, os, cols;
  float eps;
} LayerNormArgs;

/* Sum of v[0..n) in 16 partial sums (so the loop vectorises without
 * reassociating anything the compiler may not), then their tree. */
static inline float sum16(const float *v, int64_t n, float shift) {
  float part[16] = {0};
  int64_t c = 0;
  for (; c + 16 <= n; c += 16)
    for (int i = 0; i < 16; ++i)
      part[i] += v[c + i] - shift;
  for (; c < n; ++c)
    part[c & 15] += v[c] - shift;
  for (int w = 8; w > 0; w /= 2)
    for (int i = 0; i < w; ++i)
      part[i] += part[i + w];
  return part[0];
}

static inline float sumsq16(const float *v, int64_t n, float mean) {
  float part[16] = {0};
  int64_t c = 0;
  for (; c + 16 <= n; c += 16)
    for (int i = 0; i < 16; ++i) {
      float d = v[c + i] - mean;
      part[i] += d * d;
    }
  for (; c < n; ++c) {
    float d = v[c] - mean;
    part[c & 15] += d * d;
  }
  for (int w = 8; w > 0; w /= 2)
    for (int i = 0; i < w; ++i)
      part[i] += part[i + w];
  return part[0];
}

static void layer_norm_task(void *arg, int64_t r0, int64_t r1) {
  const LayerNormArgs *a = (const LayerNormArgs *)arg;
  const int64_t n = a->cols;
  for (int64_t row = r0; row < r1; ++row) {
    const float *src = a->x + row * a->xs;
    if (a->residual) { /* the residual sum is stored first, and normalised */
      const float *r = a->residual + row * a->rs;
      float *s = a->sum + row * a->ss;
#pragma clang loop vectorize(assume_safety)
      for (int64_t c = 0; c < n; ++c)
        s[c] = src[c] + r[c];
      src = s;
    }
    const float mean = sum16(src, n, 0.0f) / (float)n;
    const float var = sumsq16(src, n, mean) / (float)n;
    const float inv = 1.0f / __builtin_sqrtf(var + a->eps);
    if (a->outb) { /* the input of a product computed in bf16 */
      uint16_t *ob = a->outb + row * n;
      for (int64_t c = 0; c < n; ++c)
        ob[c] = kiln_round_bf16((src[c] - mean) * inv * a->gamma[c] + a->beta[c]);
      continue;
    }
    float *o = a->out + row * a->os;
#pragma clang loop vectorize(assume_safety)
    for (int64_t c = 0; c < n; ++c)
      o[c] = (src[c] - mean) * inv * a->gamma[c] + a->beta[c];
  }
}

void KILN_FN(kiln_layer_norm)(const KilnRuntimeContext *rt, const float *x, int64_t xs, const float *residual,
                              int64_t rs, float *sum, int64_t ss, const float *gamma, const float *beta, float *out,
                              int64_t os, int64_t rows, int64_t cols, float eps, uint16_t *out_bf16) {
  LayerNormArgs a = {x, residual, gamma, beta, sum, out, out_bf16, xs, rs, ss, os, cols, eps};
  /* Rows of a prefill spread over the pool; decode's single row runs inline. */
  kiln_parallel(rt, rows, layer_norm_task, &a);
}
