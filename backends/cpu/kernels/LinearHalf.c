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
#define HALF_R 4 /* decode rows per pass: 16 of the 32 zmm hold sums */
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
#define HALF_R 1 /* 8 ymm of sums per row: one row per pass */
#endif

#if defined(VW)
enum { V = KILN_PANEL / VW };
/* Decode rows m0..m0+R of one panel: a plain stream over it, four
 * independent sums per lane group and row; a row's arithmetic does not
 * depend on R. Always inlined, so R is a constant and the sums live in
 * registers (as a call, they lived on the stack: half the speed, f16 and
 * bf16 on AVX-512). */
static inline __attribute__((always_inline)) void half_gemv(const HalfArgs *a, const uint16_t *panel, int64_t m0,
                                                            int R, int64_t n0, int64_t nn) {
  const int64_t K = a->K;
  vec s0[HALF_R][V], s1[HALF_R][V], s2[HALF_R][V], s3[HALF_R][V];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v)
      s0[r][v] = s1[r][v] = s2[r][v] = s3[r][v] = vzero();
  int64_t k = 0;
  for (; k + 4 <= K; k += 4)
    for (int v = 0; v < V; ++v) {
      vec w0 = widen(panel + k * KILN_PANEL + v * VW), w1 = widen(panel + (k + 1) * KILN_PANEL + v * VW);
      vec w2 = widen(panel + (k + 2) * KILN_PANEL + v * VW), w3 = widen(panel + (k + 3) * KILN_PANEL + v * VW);
      for (int r = 0; r < R; ++r) {
        const float *x = a->x + (m0 + r) * K;
        s0[r][v] = vfma(vset1(x[k]), w0, s0[r][v]);
        s1[r][v] = vfma(vset1(x[k + 1]), w1, s1[r][v]);
        s2[r][v] = vfma(vset1(x[k + 2]), w2, s2[r][v]);
        s3[r][v] = vfma(vset1(x[k + 3]), w3, s3[r][v]);
      }
    }
  for (; k < K; ++k)
    for (int v = 0; v < V; ++v)
      for (int r = 0; r < R; ++r)
        s0[r][v] = vfma(vset1(a->x[(m0 + r) * K + k]), widen(panel + k * KILN_PANEL + v * VW), s0[r][v]);
  for (int r = 0; r < R; ++r) {
    float out[KILN_PANEL], part[4][KILN_PANEL];
    for (int v = 0; v < V; ++v) {
      vstore(part[0] + v * VW, s0[r][v]);
      vstore(part[1] + v * VW, s1[r][v]);
      vstore(part[2] + v * VW, s2[r][v]);
      vstore(part[3] + v * VW, s3[r][v]);
    }
    for (int j = 0; j < KILN_PANEL; ++j)
      out[j] = (part[0][j] + part[1][j]) + (part[2][j] + part[3][j]);
    float *yr = a->y + (m0 + r) * a->N;
    for (int64_t j = 0; j < nn; ++j)
      yr[n0 + j] = out[j] + (a->bias ? a->bias[n0 + j] : 0.0f);
  }
}
#endif

#if defined(__AVX512F__)
/* Prefill on AVX-512: PanelsAVX512.h's kernel over pairs of panels, as for
 * f32 (two FMAs per broadcast input: one panel at a time gave one, and f16
 * and bf16 prefill ran 20-35% behind f32). Decode keeps half_gemv. */
#define PANEL_ELEM uint16_t
#define PANEL_ARGS HalfArgs
#define PANEL_TASK half_prefill_task
#define PANEL_PREFETCH_ROWS 0
static inline __m512 panel_widen(const uint16_t *p) { return widen(p); }
static inline void panel_finish(const HalfArgs *a, float *yr, __m512 acc, int64_t n0, int64_t nn) {
  __mmask16 mask = (__mmask16)((1u << nn) - 1u);
  __m512 bias = a->bias ? _mm512_maskz_loadu_ps(mask, a->bias + n0) : _mm512_setzero_ps();
  _mm512_mask_storeu_ps(yr, mask, _mm512_add_ps(acc, bias));
}
#include "PanelsAVX512.h"
#endif

static void half_task(void *arg, int64_t p0, int64_t p1) {
  const HalfArgs *a = (const HalfArgs *)arg;
  const int64_t K = a->K, N = a->N;
  for (int64_t p = p0; p < p1; ++p) {
    const uint16_t *panel = a->w + p * K * KILN_PANEL;
    int64_t n0 = p * KILN_PANEL, nn = KILN_MIN(KILN_PANEL, N - n0);
#if defined(VW)
    if (a->M <= KILN_DECODE_MAX_ROWS) {
      /* Decode, batched or not: R rows at a time share each weight load,
       * each row computed exactly as alone. */
      int64_t m0 = 0;
      for (; m0 + HALF_R <= a->M; m0 += HALF_R)
        half_gemv(a, panel, m0, HALF_R, n0, nn);
      for (; m0 < a->M; ++m0)
        half_gemv(a, panel, m0, 1, n0, nn);
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
#if defined(__AVX512F__)
  if (M > KILN_DECODE_MAX_ROWS) {
    kiln_parallel(rt, ((N + KILN_PANEL - 1) / KILN_PANEL + 1) / 2, half_prefill_task, &a);
    return;
  }
#endif
  kiln_parallel(rt, (N + KILN_PANEL - 1) / KILN_PANEL, half_task, &a);
}
