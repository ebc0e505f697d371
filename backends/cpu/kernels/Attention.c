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
  const float *q;
  const void *k, *v; /* f32 [H][C][D], or int8 caches (KernelABI.h) */
  const int32_t *pos;
  float *out;
  int64_t q_stride, S, H, C, D;
  float scale;
  int q8;
} AttentionArgs;

enum { kMaxCache = 8192, kMaxHeadDim = 512 };

/* scores[c] = exp(scores[c] - mx) for c < visible; returns their sum (16
 * partial sums, so the loop vectorises without reassociation). */
static inline float softmax_numerators(float *scores, int64_t visible, float mx) {
  float part[16] = {0}, sum = 0.0f;
  for (int64_t c = 0; c < visible; ++c)
    scores[c] = kiln_exp_nonpositive(scores[c] - mx);
  int64_t c = 0;
  for (; c + 16 <= visible; c += 16)
    for (int i = 0; i < 16; ++i)
      part[i] += scores[c + i];
  for (; c < visible; ++c)
    sum += scores[c];
  for (int i = 0; i < 16; ++i)
    sum += part[i];
  return sum;
}

#if defined(__AVX512F__)
#include <immintrin.h>

/* One cache row's 16 values from column 16 * j (int8 rows widened). */
static inline __m512 attn_row16(const void *row, int q8, int j) {
  return q8 ? _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)((const int8_t *)row + 16 * j))))
            : _mm512_loadu_ps((const float *)row + 16 * j);
}

/* Lane r of the result: the sum of the 16 lanes of p[r]. Pairs of rows
 * interleave within 128-bit lanes (unpack), then quads (shuffle), then the
 * four 128-bit lanes fold (shuffle_f32x4), summing at each step. */
static inline __m512 transpose_sum16(const __m512 p[16]) {
  __m512 u[8], v[4], w[2];
  for (int m = 0; m < 8; ++m)
    u[m] = _mm512_add_ps(_mm512_unpacklo_ps(p[2 * m], p[2 * m + 1]), _mm512_unpackhi_ps(p[2 * m], p[2 * m + 1]));
  for (int g = 0; g < 4; ++g) /* lane L: rows 4g..4g+3, each over lane L's 4 values */
    v[g] = _mm512_add_ps(_mm512_shuffle_ps(u[2 * g], u[2 * g + 1], 0x44), _mm512_shuffle_ps(u[2 * g], u[2 * g + 1], 0xEE));
  for (int h = 0; h < 2; ++h)
    w[h] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * h], v[2 * h + 1], 0x88),
                         _mm512_shuffle_f32x4(v[2 * h], v[2 * h + 1], 0xDD));
  return _mm512_add_ps(_mm512_shuffle_f32x4(w[0], w[1], 0x88), _mm512_shuffle_f32x4(w[0], w[1], 0xDD));
}

/* One (slot, head) with D = 16 * NB (NB a constant after inlining): the
 * query and the output sums stay in registers, and a score's dot product is
 * one reduction per row instead of a serial chain of 16 adds, so successive
 * rows overlap and the loads run ahead (decode reads the rows from memory).
 * Same math as the portable loop, in another summation order. */
static inline __attribute__((always_inline)) void attention_head_avx512(const AttentionArgs *a, const float *q,
                                                                        const char *kb, const char *vb,
                                                                        const float *ks, const float *vs,
                                                                        int64_t visible, float *scores, float *o,
                                                                        const int NB, const int q8) {
  const int64_t rowBytes = 16 * NB * (q8 ? 1 : 4);
  __m512 qv[8], acc[8];
  for (int j = 0; j < NB; ++j) {
    qv[j] = _mm512_loadu_ps(q + 16 * j);
    acc[j] = _mm512_setzero_ps();
  }
  float mx = -3.402823466e38f;
  int64_t c = 0;
  if (!q8) {
    /* 16 rows at a time: each row's products summed in one zmm, then the 16
     * zmm reduced together (transpose_sum16: 45 shuffles and adds, where 16
     * separate reductions take about 130), into one zmm of 16 scores. */
    __m512 mxv = _mm512_set1_ps(mx), scale = _mm512_set1_ps(a->scale);
    for (; c + 16 <= visible; c += 16) {
      __m512 p[16];
      for (int r = 0; r < 16; ++r) {
        const float *kr = (const float *)(kb + (c + r) * rowBytes);
        p[r] = _mm512_mul_ps(qv[0], _mm512_loadu_ps(kr));
        for (int j = 1; j < NB; ++j)
          p[r] = _mm512_fmadd_ps(qv[j], _mm512_loadu_ps(kr + 16 * j), p[r]);
      }
      __m512 sc = _mm512_mul_ps(transpose_sum16(p), scale);
      _mm512_storeu_ps(scores + c, sc);
      mxv = _mm512_max_ps(mxv, sc);
    }
    mx = _mm512_reduce_max_ps(mxv);
  }
  for (; c < visible; ++c) {
    const char *kr = kb + c * rowBytes;
    __m512 d0 = _mm512_mul_ps(qv[0], attn_row16(kr, q8, 0)), d1 = _mm512_setzero_ps();
    for (int j = 1; j < NB; ++j) {
      if (j & 1)
        d1 = _mm512_fmadd_ps(qv[j], attn_row16(kr, q8, j), d1);
      else
        d0 = _mm512_fmadd_ps(qv[j], attn_row16(kr, q8, j), d0);
    }
    float dot = _mm512_reduce_add_ps(_mm512_add_ps(d0, d1));
    scores[c] = dot * (q8 ? ks[c] : 1.0f) * a->scale;
    mx = scores[c] > mx ? scores[c] : mx;
  }
  const float sum = softmax_numerators(scores, visible, mx);
  /* The weighted sum in SETS interleaved sets of sums (rows r, r + SETS, ...):
   * one set was a chain of one FMA per row, 4 cycles of latency each. */
  const int SETS = NB <= 2 ? 4 : NB <= 4 ? 3 : 2; /* a constant after inlining */
  __m512 more[3][8];
  for (int t = 0; t < SETS - 1; ++t)
    for (int j = 0; j < NB; ++j)
      more[t][j] = _mm512_setzero_ps();
  int64_t r = 0;
  for (; r + SETS <= visible; r += SETS)
    for (int t = 0; t < SETS; ++t) {
      const char *vr = vb + (r + t) * rowBytes;
      __m512 p = _mm512_set1_ps(scores[r + t] * (q8 ? vs[r + t] : 1.0f));
      for (int j = 0; j < NB; ++j) {
        if (t == 0)
          acc[j] = _mm512_fmadd_ps(p, attn_row16(vr, q8, j), acc[j]);
        else
          more[t - 1][j] = _mm512_fmadd_ps(p, attn_row16(vr, q8, j), more[t - 1][j]);
      }
    }
  for (; r < visible; ++r) {
    const char *vr = vb + r * rowBytes;
    __m512 p = _mm512_set1_ps(scores[r] * (q8 ? vs[r] : 1.0f));
    for (int j = 0; j < NB; ++j)
      acc[j] = _mm512_fmadd_ps(p, attn_row16(vr, q8, j), acc[j]);
  }
  for (int t = 0; t < SETS - 1; ++t)
    for (int j = 0; j < NB; ++j)
      acc[j] = _mm512_add_ps(acc[j], more[t][j]);
  __m512 inv = _mm512_set1_ps(1.0f / sum);
  for (int j = 0; j < NB; ++j)
    _mm512_storeu_ps(o + 16 * j, _mm512_mul_ps(acc[j], inv));
}
#endif


static void attention_task(void *arg, int64_t t0, int64_t t1) {
  const AttentionArgs *a = (const AttentionArgs *)arg;
  float scores[kMaxCache];
  float acc[kMaxHeadDim];
  const int64_t D = a->D, C = a->C, H = a->H;
  for (int64_t t = t0; t < t1; ++t) {
    /* Head-major: successive tasks read the same head's cache rows while they are
     * still in L1/L2 (slot-major, every task read another head's: a prefill's
     * 12 heads of K and V are 1.5 MB, past L2). */
    int64_t h = t / a->S, s = t % a->S;
    float *o = a->out + s * H * D + h * D;
    int64_t limit = a->pos[s];
    if (limit < 0) {
      for (int64_t d = 0; d < D; ++d)
        o[d] = 0.0f;
      continue;
    }
    int64_t visible = KILN_MIN(C, limit + 1);
    const float *q = a->q + s * a->q_stride + h * D;
    const float *kh = (const float *)a->k + h * C * D, *vh = (const float *)a->v + h * C * D;
    const int8_t *kq = (const int8_t *)a->k + h * C * D, *vq = (const int8_t *)a->v + h * C * D;
    const float *ks = kiln_cache_scales(a->k, H, C, D) + h * C, *vs = kiln_cache_scales(a->v, H, C, D) + h * C;
#if defined(__AVX512F__)
    if (D % 16 == 0 && D <= 128) {
      const char *kb = a->q8 ? (const char *)kq : (const char *)kh, *vb = a->q8 ? (const char *)vq : (const char *)vh;
      /* NB and the cache format constant in each copy (a runtime q8 test sat in every row's loop). */
#define KILN_HEAD(nb)                                                                                               \
  case nb:                                                                                                           \
    if (a->q8)                                                                                                       \
      attention_head_avx512(a, q, kb, vb, ks, vs, visible, scores, o, nb, 1);                                        \
    else                                                                                                             \
      attention_head_avx512(a, q, kb, vb, ks, vs, visible, scores, o, nb, 0);                                        \
    break;
      switch (D / 16) {
        KILN_HEAD(1) KILN_HEAD(2) KILN_HEAD(3) KILN_HEAD(4) KILN_HEAD(5) KILN_HEAD(6) KILN_HEAD(7) KILN_HEAD(8)
      }
#undef KILN_HEAD
      continue;
    }
#endif
    /* Float sums are never reassociated (no -ffast-math), so every
     * reduction keeps 16 independent partial sums: that is what lets the
     * compiler vectorise it. */
    float mx = -3.402823466e38f;
    for (int64_t c = 0; c < visible; ++c) {
      float part[16] = {0}, dot = 0.0f;
      int64_t d = 0;
      if (a->q8) {
        const int8_t *kr = kq + c * D;
        for (; d + 16 <= D; d += 16)
          for (int i = 0; i < 16; ++i)
            part[i] += q[d + i] * (float)kr[d + i];
        for (; d < D; ++d)
          dot += q[d] * (float)kr[d];
      } else {
        const float *kr = kh + c * D;
        for (; d + 16 <= D; d += 16)
          for (int i = 0; i < 16; ++i)
            part[i] += q[d + i] * kr[d + i];
        for (; d < D; ++d)
          dot += q[d] * kr[d];
      }
      for (int i = 0; i < 16; ++i)
        dot += part[i];
      scores[c] = dot * (a->q8 ? ks[c] : 1.0f) * a->scale;
      mx = scores[c] > mx ? scores[c] : mx;
    }
    const float sum = softmax_numerators(scores, visible, mx);
    for (int64_t d = 0; d < D; ++d)
      acc[d] = 0.0f;
    if (a->q8) {
      for (int64_t c = 0; c < visible; ++c) {
        const int8_t *vr = vq + c * D;
        float p = scores[c] * vs[c];
        for (int64_t d = 0; d < D; ++d)
          acc[d] += p * (float)vr[d];
      }
    } else {
      for (int64_t c = 0; c < visible; ++c) {
        const float *vr = vh + c * D;
        float p = scores[c];
        for (int64_t d = 0; d < D; ++d)
          acc[d] += p * vr[d];
      }
    }
    float inv = 1.0f / sum;
    for (int64_t d = 0; d < D; ++d)
      o[d] = acc[d] * inv;
  }
}

void KILN_FN(kiln_attention)(const KilnRuntimeContext *rt, const float *q, int64_t q_stride, const float *k_cache,
                             const float *v_cache, const int32_t *positions, float *out, int64_t S, int64_t H,
                             int64_t C, int64_t D, float scale) {
  AttentionArgs a = {q, k_cache, v_cache, positions, out, q_stride, S, H, C, D, scale, 0};
  kiln_parallel(rt, S * H, attention_task, &a);
}

void KILN_FN(kiln_attention_q8kv)(const KilnRuntimeContext *rt, const float *q, int64_t q_stride, const int8_t *k_cache,
                                  const int8_t *v_cache, const int32_t *positions, float *out, int64_t S, int64_t H,
                                  int64_t C, int64_t D, float scale) {
  AttentionArgs a = {q, k_cache, v_cache, positions, out, q_stride, S, H, C, D, scale, 1};
  kiln_parallel(rt, S * H, attention_task, &a);
}

/* Writes rows of src (row s of token s: H heads of D values, row stride
 * src_stride) into an int8 cache at each token's position (negative:
 * padding, skipped), one scale per head per token. */
typedef struct CacheWriteArgs {
  const float *src;
  int64_t src_stride;
  const int32_t *pos;
  int8_t *cache;
  int64_t H, C, D;
} CacheWriteArgs;

static void cache_write_task(void *arg, int64_t t0, int64_t t1) {
  const CacheWriteArgs *a = (const CacheWriteArgs *)arg;
  float *scales = kiln_cache_scales_mut(a->cache, a->H, a->C, a->D);
  for (int64_t t = t0; t < t1; ++t) {
    int64_t s = t / a->H, h = t % a->H, p = a->pos[s];
    if (p < 0 || p >= a->C)
      continue;
    const float *row = a->src + s * a->src_stride + h * a->D;
    int8_t *q = a->cache + (h * a->C + p) * a->D;
    float scale = kiln_q8_row_scale(row, a->D);
    scales[h * a->C + p] = scale;
    for (int64_t d = 0; d < a->D; ++d)
      q[d] = (int8_t)kiln_q8_value(row[d], scale);
  }
}

void KILN_FN(kiln_cache_write_q8)(const KilnRuntimeContext *rt, const float *src, int64_t src_stride,
                                  const int32_t *positions, int64_t S, int8_t *cache, int64_t H, int64_t C,
                                  int64_t D) {
  CacheWriteArgs a = {src, src_stride, positions, cache, H, C, D};
  kiln_parallel(rt, S * H, cache_write_task, &a);
}
