/*===- LinearHalf.c - linear kernels for f16 and bf16 weights -------------===*
 * Compiled per ISA variant (KILN_VARIANT) and per format (KILN_HALF_F16 or
 * KILN_HALF_BF16). Same panels as f32 ("panel16"), of 16-bit values widened
 * to f32 in registers: the weights are never expanded in memory. AVX-512
 * and AVX2 (+F16C) get intrinsics; other targets a portable C loop.
 *===----------------------------------------------------------------------===*/
#include "KernelCommon.h"

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

#define KILN_CAT2(a, b) a##b
#define KILN_CAT3(a, b, c) a##b##c
#define KILN_CAT(a, b) KILN_CAT2(a, b)
#ifdef KILN_HALF_F16
#define KILN_HALF_NAME f16
#else
#define KILN_HALF_NAME bf16
#endif
#define KILN_FN KILN_CAT(KILN_CAT(kiln_linear_, KILN_HALF_NAME), KILN_CAT(_, KILN_VARIANT))

typedef struct HalfArgs {
  const float *x;
  const uint16_t *w;
  const float *bias;
  float *y;
  int64_t M, K, N;
} HalfArgs;

static inline float half_to_float(uint16_t h) {
  union {
    uint32_t u;
    float f;
  } v;
#ifdef KILN_HALF_F16
  uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  if (exp == 0x1f) {
    v.u = sign | 0x7f800000u | (mant << 13);
  } else if (exp == 0) {
    v.f = (float)mant * 5.9604644775390625e-08f; /* 2^-24 */
    v.u |= sign;
  } else {
    v.u = sign | ((exp + 112) << 23) | (mant << 13);
  }
#else
  v.u = (uint32_t)h << 16;
#endif
  return v.f;
}

#if defined(__AVX512F__)
#define MR 12
typedef __m512 vec;
static inline vec widen(const uint16_t *p) {
  __m256i h = _mm256_loadu_si256((const __m256i *)p);
#ifdef KILN_HALF_F16
  return _mm512_cvtph_ps(h);
#else
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
#endif
}
static inline vec vzero(void) { return _mm512_setzero_ps(); }
static inline vec vset1(float x) { return _mm512_set1_ps(x); }
static inline vec vfma(vec a, vec b, vec c) { return _mm512_fmadd_ps(a, b, c); }
static inline void vstore(float *p, vec v) { _mm512_storeu_ps(p, v); }
#define VW 16
#elif defined(__AVX2__)
#define MR 6
typedef __m256 vec;
static inline vec widen(const uint16_t *p) {
  __m128i h = _mm_loadu_si128((const __m128i *)p);
#ifdef KILN_HALF_F16
  return _mm256_cvtph_ps(h);
#else
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
#endif
}
static inline vec vzero(void) { return _mm256_setzero_ps(); }
static inline vec vset1(float x) { return _mm256_set1_ps(x); }
static inline vec vfma(vec a, vec b, vec c) { return _mm256_fmadd_ps(a, b, c); }
static inline void vstore(float *p, vec v) { _mm256_storeu_ps(p, v); }
#define VW 8
#endif

static void half_task(void *arg, int64_t p0, int64_t p1) {
  const HalfArgs *a = (const HalfArgs *)arg;
  const int64_t K = a->K, N = a->N;
  for (int64_t p = p0; p < p1; ++p) {
    const uint16_t *panel = a->w + p * K * KILN_PANEL;
    int64_t n0 = p * KILN_PANEL, nn = KILN_MIN(KILN_PANEL, N - n0);
#if defined(VW)
    enum { V = KILN_PANEL / VW };
    if (a->M == 1) {
      /* Decode: a plain stream over the panel, four independent sums per lane group. */
      vec s0[V], s1[V], s2[V], s3[V];
      for (int v = 0; v < V; ++v)
        s0[v] = s1[v] = s2[v] = s3[v] = vzero();
      const float *x = a->x;
      int64_t k = 0;
      for (; k + 4 <= K; k += 4)
        for (int v = 0; v < V; ++v) {
          s0[v] = vfma(vset1(x[k]), widen(panel + k * KILN_PANEL + v * VW), s0[v]);
          s1[v] = vfma(vset1(x[k + 1]), widen(panel + (k + 1) * KILN_PANEL + v * VW), s1[v]);
          s2[v] = vfma(vset1(x[k + 2]), widen(panel + (k + 2) * KILN_PANEL + v * VW), s2[v]);
          s3[v] = vfma(vset1(x[k + 3]), widen(panel + (k + 3) * KILN_PANEL + v * VW), s3[v]);
        }
      for (; k < K; ++k)
        for (int v = 0; v < V; ++v)
          s0[v] = vfma(vset1(x[k]), widen(panel + k * KILN_PANEL + v * VW), s0[v]);
      float out[KILN_PANEL], part[4][KILN_PANEL];
      for (int v = 0; v < V; ++v) {
        vstore(part[0] + v * VW, s0[v]);
        vstore(part[1] + v * VW, s1[v]);
        vstore(part[2] + v * VW, s2[v]);
        vstore(part[3] + v * VW, s3[v]);
      }
      for (int j = 0; j < KILN_PANEL; ++j)
        out[j] = (part[0][j] + part[1][j]) + (part[2][j] + part[3][j]);
      for (int64_t j = 0; j < nn; ++j)
        a->y[n0 + j] = out[j] + (a->bias ? a->bias[n0 + j] : 0.0f);
      continue;
    }
    for (int64_t m0 = 0; m0 < a->M; m0 += MR) {
      int64_t mr = KILN_MIN(MR, a->M - m0);
      vec acc[MR][V];
      for (int i = 0; i < MR; ++i)
        for (int v = 0; v < V; ++v)
          acc[i][v] = vzero();
      const float *x = a->x + m0 * K;
      for (int64_t k = 0; k < K; ++k) {
        vec w[V];
        for (int v = 0; v < V; ++v)
          w[v] = widen(panel + k * KILN_PANEL + v * VW);
        if (mr == MR) {
          for (int i = 0; i < MR; ++i) {
            vec xv = vset1(x[i * K + k]);
            for (int v = 0; v < V; ++v)
              acc[i][v] = vfma(xv, w[v], acc[i][v]);
          }
        } else {
          for (int i = 0; i < mr; ++i) {
            vec xv = vset1(x[i * K + k]);
            for (int v = 0; v < V; ++v)
              acc[i][v] = vfma(xv, w[v], acc[i][v]);
          }
        }
      }
      for (int i = 0; i < mr; ++i) {
        float out[KILN_PANEL];
        for (int v = 0; v < V; ++v)
          vstore(out + v * VW, acc[i][v]);
        float *yr = a->y + (m0 + i) * N + n0;
        for (int64_t j = 0; j < nn; ++j)
          yr[j] = out[j] + (a->bias ? a->bias[n0 + j] : 0.0f);
      }
    }
#else
    for (int64_t m = 0; m < a->M; ++m) {
      float acc[KILN_PANEL] = {0};
      const float *xr = a->x + m * K;
      for (int64_t k = 0; k < K; ++k)
        for (int j = 0; j < KILN_PANEL; ++j)
          acc[j] += xr[k] * half_to_float(panel[k * KILN_PANEL + j]);
      float *yr = a->y + m * N + n0;
      for (int64_t j = 0; j < nn; ++j)
        yr[j] = acc[j] + (a->bias ? a->bias[n0 + j] : 0.0f);
    }
#endif
  }
}

void KILN_FN(const KilnRuntimeContext *rt, const float *x, const uint16_t *w, const float *bias, float *y, int64_t M,
             int64_t K, int64_t N) {
  HalfArgs a = {x, w, bias, y, M, K, N};
  kiln_parallel(rt, (N + KILN_PANEL - 1) / KILN_PANEL, half_task, &a);
}
