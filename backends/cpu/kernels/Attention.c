/*===- Attention.c - fused causal attention over the KV cache -------------===*
 * Compiled once per variant (KILN_VARIANT names it); the loops are written
 * to vectorise for whatever ISA the file is compiled for. One task per
 * (slot, head): scores over the visible cache rows, a max-subtracted
 * exponential, then the weighted sum of value rows.
 *===----------------------------------------------------------------------===*/
#include "KernelCommon.h"

#define KILN_CAT2(a, b) a##b
#define KILN_CAT(a, b) KILN_CAT2(a, b)
#define KILN_FN(name) KILN_CAT(name##_, KILN_VARIANT)

typedef struct AttentionArgs {
  const float *q, *k, *v;
  const int32_t *pos;
  float *out;
  int64_t q_stride, S, H, C, D;
  float scale;
} AttentionArgs;

enum { kMaxCache = 8192, kMaxHeadDim = 512 };

static void attention_task(void *arg, int64_t t0, int64_t t1) {
  const AttentionArgs *a = (const AttentionArgs *)arg;
  float scores[kMaxCache];
  float acc[kMaxHeadDim];
  const int64_t D = a->D, C = a->C, H = a->H;
  for (int64_t t = t0; t < t1; ++t) {
    int64_t s = t / H, h = t % H;
    float *o = a->out + s * H * D + h * D;
    int64_t limit = a->pos[s];
    if (limit < 0) {
      for (int64_t d = 0; d < D; ++d)
        o[d] = 0.0f;
      continue;
    }
    int64_t visible = KILN_MIN(C, limit + 1);
    const float *q = a->q + s * a->q_stride + h * D;
    const float *kh = a->k + h * C * D, *vh = a->v + h * C * D;
    /* Float sums are never reassociated (no -ffast-math), so every
     * reduction keeps 16 independent partial sums: that is what lets the
     * compiler vectorise it. */
    float mx = -3.402823466e38f;
    for (int64_t c = 0; c < visible; ++c) {
      const float *kr = kh + c * D;
      float part[16] = {0};
      int64_t d = 0;
      for (; d + 16 <= D; d += 16)
        for (int i = 0; i < 16; ++i)
          part[i] += q[d + i] * kr[d + i];
      float dot = 0.0f;
      for (; d < D; ++d)
        dot += q[d] * kr[d];
      for (int i = 0; i < 16; ++i)
        dot += part[i];
      scores[c] = dot * a->scale;
      mx = scores[c] > mx ? scores[c] : mx;
    }
    for (int64_t c = 0; c < visible; ++c)
      scores[c] = kiln_exp_nonpositive(scores[c] - mx);
    float part[16] = {0}, sum = 0.0f;
    int64_t c = 0;
    for (; c + 16 <= visible; c += 16)
      for (int i = 0; i < 16; ++i)
        part[i] += scores[c + i];
    for (; c < visible; ++c)
      sum += scores[c];
    for (int i = 0; i < 16; ++i)
      sum += part[i];
    for (int64_t d = 0; d < D; ++d)
      acc[d] = 0.0f;
    for (int64_t c = 0; c < visible; ++c) {
      const float *vr = vh + c * D;
      float p = scores[c];
      for (int64_t d = 0; d < D; ++d)
        acc[d] += p * vr[d];
    }
    float inv = 1.0f / sum;
    for (int64_t d = 0; d < D; ++d)
      o[d] = acc[d] * inv;
  }
}

void KILN_FN(kiln_attention)(const KilnRuntimeContext *rt, const float *q, int64_t q_stride, const float *k_cache,
                             const float *v_cache, const int32_t *positions, float *out, int64_t S, int64_t H,
                             int64_t C, int64_t D, float scale) {
  AttentionArgs a = {q, k_cache, v_cache, positions, out, q_stride, S, H, C, D, scale};
  kiln_parallel(rt, S * H, attention_task, &a);
}
