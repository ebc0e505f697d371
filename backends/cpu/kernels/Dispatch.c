/*===- Dispatch.c - kernel tables and model.so entry points ---------------===*
 * Compiled for the artifact's baseline ISA. The tables list the variants of
 * this architecture from oldest to shiniest; kiln_model_init picks the best
 * the CPU supports (or the one forced) once, at artifact load.
 *===----------------------------------------------------------------------===*/
#include "KernelABI.h"

#define DECLARE_VARIANT(v)                                                                                        \
  void kiln_linear_##v(const KilnRuntimeContext *, const float *, const float *, const float *, float *, int64_t, \
                       int64_t, int64_t);                                                                         \
  void kiln_attention_##v(const KilnRuntimeContext *, const float *, int64_t, const float *, const float *,       \
                          const int32_t *, float *, int64_t, int64_t, int64_t, int64_t, float);                  \
  void kiln_linear_q8_##v(const KilnRuntimeContext *, const float *, const int8_t *, const float *, const float *, \
                          float *, int64_t, int64_t, int64_t);                                                  \
  void kiln_linear_f16_##v(const KilnRuntimeContext *, const float *, const uint16_t *, const float *, float *,   \
                           int64_t, int64_t, int64_t);                                                           \
  void kiln_linear_bf16_##v(const KilnRuntimeContext *, const float *, const uint16_t *, const float *, float *,  \
                            int64_t, int64_t, int64_t);                                                  \
  void kiln_linear_q4_##v(const KilnRuntimeContext *, const float *, const uint8_t *, const float *, const float *, \
                          float *, int64_t, int64_t, int64_t, int64_t);                                 \
  void kiln_quantize_rows_##v(const KilnRuntimeContext *, const float *, int64_t, int64_t, float, int8_t *,      \
                              float *, int32_t *);                                                               \
  void kiln_linear_w4a8_##v(const KilnRuntimeContext *, const int8_t *, const float *, const int32_t *,         \
                            const uint8_t *, const float *, const int32_t *, const float *, float *, int64_t,   \
                            int64_t, int64_t, int64_t);                                                        \
  void kiln_attention_q8kv_##v(const KilnRuntimeContext *, const float *, int64_t, const int8_t *, const int8_t *, \
                               const int32_t *, float *, int64_t, int64_t, int64_t, int64_t, float);            \
  void kiln_cache_write_q8_##v(const KilnRuntimeContext *, const float *, int64_t, const int32_t *, int64_t,      \
                               int8_t *, int64_t, int64_t, int64_t);                                             \
  void kiln_linear_s24_##v(const KilnRuntimeContext *, const float *, const float *, const float *, float *,      \
                           int64_t, int64_t, int64_t);                                                           \
  void kiln_linear_w8a8_##v(const KilnRuntimeContext *, const int8_t *, const float *, const int8_t *,          \
                            const float *, const int32_t *, const float *, float *, int64_t, int64_t, int64_t); \
  void kiln_gelu_tanh_##v(const KilnRuntimeContext *, const float *, float *, int64_t, uint16_t *);              \
  void kiln_layer_norm_##v(const KilnRuntimeContext *, const float *, int64_t, const float *, int64_t, float *,     \
                           int64_t, const float *, const float *, float *, int64_t, int64_t, int64_t, float,     \
                           uint16_t *);                                                                          \
  void kiln_round_rows_bf16_##v(const KilnRuntimeContext *, const float *, int64_t, int64_t, uint16_t *);          \
  void kiln_linear_bf16x2_##v(const KilnRuntimeContext *, const uint16_t *, const uint16_t *, const float *,      \
                              float *, int64_t, int64_t, int64_t);

DECLARE_VARIANT(generic)
#if defined(__x86_64__)
DECLARE_VARIANT(avx2)
DECLARE_VARIANT(avx512)
void kiln_quantize_rows_avx512vnni(const KilnRuntimeContext *, const float *, int64_t, int64_t, float, int8_t *,
                                   float *, int32_t *);
void kiln_linear_w4a8_avx512vnni(const KilnRuntimeContext *, const int8_t *, const float *, const int32_t *,
                                 const uint8_t *, const float *, const int32_t *, const float *, float *, int64_t,
                                 int64_t, int64_t, int64_t);
void kiln_linear_w8a8_avx512vnni(const KilnRuntimeContext *, const int8_t *, const float *, const int8_t *,
                                 const float *, const int32_t *, const float *, float *, int64_t, int64_t, int64_t);
void kiln_round_rows_bf16_avx512bf16(const KilnRuntimeContext *, const float *, int64_t, int64_t, uint16_t *);
void kiln_linear_bf16x2_avx512bf16(const KilnRuntimeContext *, const uint16_t *, const uint16_t *, const float *,
                                   float *, int64_t, int64_t, int64_t);
#elif defined(__aarch64__)
DECLARE_VARIANT(neon)
#endif

typedef struct Variant {
  int32_t id;
  uint64_t requires;
  KilnKernelTable table;
} Variant;

static const Variant kVariants[] = {
    {KILN_KERNELS_GENERIC, 0, {"generic", kiln_linear_generic, kiln_attention_generic, kiln_linear_q8_generic, kiln_linear_f16_generic, kiln_linear_bf16_generic, kiln_linear_q4_generic,
      kiln_quantize_rows_generic, kiln_linear_w8a8_generic, kiln_linear_w4a8_generic,
      kiln_attention_q8kv_generic, kiln_cache_write_q8_generic, kiln_linear_s24_generic, kiln_gelu_tanh_generic, kiln_layer_norm_generic,
      kiln_round_rows_bf16_generic, kiln_linear_bf16x2_generic}},
#if defined(__x86_64__)
    {KILN_KERNELS_AVX2, KILN_CPU_AVX2, {"avx2", kiln_linear_avx2, kiln_attention_avx2, kiln_linear_q8_avx2, kiln_linear_f16_avx2, kiln_linear_bf16_avx2, kiln_linear_q4_avx2,
      kiln_quantize_rows_avx2, kiln_linear_w8a8_avx2, kiln_linear_w4a8_avx2,
      kiln_attention_q8kv_avx2, kiln_cache_write_q8_avx2, kiln_linear_s24_avx2, kiln_gelu_tanh_avx2, kiln_layer_norm_avx2,
      kiln_round_rows_bf16_avx2, kiln_linear_bf16x2_avx2}},
    {KILN_KERNELS_AVX512, KILN_CPU_AVX2 | KILN_CPU_AVX512, {"avx512", kiln_linear_avx512, kiln_attention_avx512, kiln_linear_q8_avx512, kiln_linear_f16_avx512, kiln_linear_bf16_avx512, kiln_linear_q4_avx512,
      kiln_quantize_rows_avx512, kiln_linear_w8a8_avx512, kiln_linear_w4a8_avx512,
      kiln_attention_q8kv_avx512, kiln_cache_write_q8_avx512, kiln_linear_s24_avx512, kiln_gelu_tanh_avx512, kiln_layer_norm_avx512,
      kiln_round_rows_bf16_avx512, kiln_linear_bf16x2_avx512}},
    /* AVX-512 with integer dot products: only the W8A8 kernels differ. */
    {KILN_KERNELS_AVX512VNNI, KILN_CPU_AVX2 | KILN_CPU_AVX512 | KILN_CPU_AVX512VNNI, {"avx512vnni", kiln_linear_avx512, kiln_attention_avx512, kiln_linear_q8_avx512, kiln_linear_f16_avx512, kiln_linear_bf16_avx512, kiln_linear_q4_avx512,
      kiln_quantize_rows_avx512vnni, kiln_linear_w8a8_avx512vnni, kiln_linear_w4a8_avx512vnni,
      kiln_attention_q8kv_avx512, kiln_cache_write_q8_avx512, kiln_linear_s24_avx512, kiln_gelu_tanh_avx512, kiln_layer_norm_avx512,
      kiln_round_rows_bf16_avx512, kiln_linear_bf16x2_avx512}},
    /* ... and with bf16 dot products: only the --cpu-math=bf16 kernels differ. */
    {KILN_KERNELS_AVX512BF16, KILN_CPU_AVX2 | KILN_CPU_AVX512 | KILN_CPU_AVX512VNNI | KILN_CPU_AVX512BF16, {"avx512bf16", kiln_linear_avx512, kiln_attention_avx512, kiln_linear_q8_avx512, kiln_linear_f16_avx512, kiln_linear_bf16_avx512, kiln_linear_q4_avx512,
      kiln_quantize_rows_avx512vnni, kiln_linear_w8a8_avx512vnni, kiln_linear_w4a8_avx512vnni,
      kiln_attention_q8kv_avx512, kiln_cache_write_q8_avx512, kiln_linear_s24_avx512, kiln_gelu_tanh_avx512, kiln_layer_norm_avx512,
      kiln_round_rows_bf16_avx512bf16, kiln_linear_bf16x2_avx512bf16}},
#elif defined(__aarch64__)
    {KILN_KERNELS_NEON, KILN_CPU_NEON, {"neon", kiln_linear_neon, kiln_attention_neon, kiln_linear_q8_neon, kiln_linear_f16_neon, kiln_linear_bf16_neon, kiln_linear_q4_neon,
      kiln_quantize_rows_neon, kiln_linear_w8a8_neon, kiln_linear_w4a8_neon,
      kiln_attention_q8kv_neon, kiln_cache_write_q8_neon, kiln_linear_s24_neon, kiln_gelu_tanh_neon, kiln_layer_norm_neon,
      kiln_round_rows_bf16_neon, kiln_linear_bf16x2_neon}},
#endif
};

static const KilnKernelTable *selected = &kVariants[0].table;

uint32_t kiln_model_abi_version(void) { return KILN_MODEL_ABI_VERSION; }

const char *kiln_model_init(uint64_t cpu_features, int32_t forced_variant) {
  const Variant *best = 0;
  for (unsigned i = 0; i < sizeof(kVariants) / sizeof(kVariants[0]); ++i) {
    const Variant *v = &kVariants[i];
    if ((v->requires & cpu_features) != v->requires)
      continue;
    if (forced_variant >= 0 ? v->id == forced_variant : 1)
      best = v;
  }
  if (!best)
    return 0;
  selected = &best->table;
  return best->table.name;
}

void kiln_uk_linear(const KilnRuntimeContext *rt, const float *x, const float *w, const float *bias, float *y,
                    int64_t M, int64_t K, int64_t N) {
  selected->linear(rt, x, w, bias, y, M, K, N);
}

void kiln_uk_linear_q8(const KilnRuntimeContext *rt, const float *x, const int8_t *w, const float *scale,
                       const float *bias, float *y, int64_t M, int64_t K, int64_t N) {
  selected->linear_q8(rt, x, w, scale, bias, y, M, K, N);
}

void kiln_uk_linear_q4(const KilnRuntimeContext *rt, const float *x, const uint8_t *w, const float *params,
                       const float *bias, float *y, int64_t M, int64_t K, int64_t N, int64_t G) {
  selected->linear_q4(rt, x, w, params, bias, y, M, K, N, G);
}

void kiln_uk_quantize_rows(const KilnRuntimeContext *rt, const float *x, int64_t M, int64_t K, float static_scale,
                           int8_t *xq, float *scales, int32_t *xsums) {
  selected->quantize_rows(rt, x, M, K, static_scale, xq, scales, xsums);
}

void kiln_uk_linear_w4a8(const KilnRuntimeContext *rt, const int8_t *xq, const float *xscale, const int32_t *xsums,
                         const uint8_t *w, const float *scales, const int32_t *zeros, const float *bias, float *y,
                         int64_t M, int64_t K, int64_t N, int64_t G) {
  selected->linear_w4a8(rt, xq, xscale, xsums, w, scales, zeros, bias, y, M, K, N, G);
}

void kiln_uk_linear_w8a8(const KilnRuntimeContext *rt, const int8_t *xq, const float *xscale, const int8_t *w,
                         const float *wscale, const int32_t *wsum, const float *bias, float *y, int64_t M, int64_t K,
                         int64_t N) {
  selected->linear_w8a8(rt, xq, xscale, w, wscale, wsum, bias, y, M, K, N);
}

void kiln_uk_linear_f16(const KilnRuntimeContext *rt, const float *x, const uint16_t *w, const float *bias, float *y,
                        int64_t M, int64_t K, int64_t N) {
  selected->linear_f16(rt, x, w, bias, y, M, K, N);
}

void kiln_uk_linear_bf16(const KilnRuntimeContext *rt, const float *x, const uint16_t *w, const float *bias, float *y,
                         int64_t M, int64_t K, int64_t N) {
  selected->linear_bf16(rt, x, w, bias, y, M, K, N);
}

void kiln_uk_attention_q8kv(const KilnRuntimeContext *rt, const float *q, int64_t q_stride, const int8_t *k_cache,
                            const int8_t *v_cache, const int32_t *positions, float *out, int64_t S, int64_t H,
                            int64_t C, int64_t D, float scale) {
  selected->attention_q8kv(rt, q, q_stride, k_cache, v_cache, positions, out, S, H, C, D, scale);
}

void kiln_uk_cache_write_q8(const KilnRuntimeContext *rt, const float *src, int64_t src_stride,
                            const int32_t *positions, int64_t S, int8_t *cache, int64_t H, int64_t C, int64_t D) {
  selected->cache_write_q8(rt, src, src_stride, positions, S, cache, H, C, D);
}

void kiln_uk_linear_s24(const KilnRuntimeContext *rt, const float *x, const float *w, const float *bias, float *y,
                        int64_t M, int64_t K, int64_t N) {
  selected->linear_s24(rt, x, w, bias, y, M, K, N);
}

void kiln_uk_attention(const KilnRuntimeContext *rt, const float *q, int64_t q_stride, const float *k_cache,
                       const float *v_cache, const int32_t *positions, float *out, int64_t S, int64_t H, int64_t C,
                       int64_t D, float scale) {
  selected->attention(rt, q, q_stride, k_cache, v_cache, positions, out, S, H, C, D, scale);
}
void kiln_uk_gelu_tanh(const KilnRuntimeContext *rt, const float *x, float *y, int64_t n, uint16_t *y_bf16) {
  selected->gelu_tanh(rt, x, y, n, y_bf16);
}
void kiln_uk_layer_norm(const KilnRuntimeContext *rt, const float *x, int64_t xs, const float *residual, int64_t rs,
                        float *sum, int64_t ss, const float *gamma, const float *beta, float *out, int64_t os,
                        int64_t rows, int64_t cols, float eps, uint16_t *out_bf16) {
  selected->layer_norm(rt, x, xs, residual, rs, sum, ss, gamma, beta, out, os, rows, cols, eps, out_bf16);
}

void kiln_uk_round_rows_bf16(const KilnRuntimeContext *rt, const float *x, int64_t M, int64_t K, uint16_t *xb) {
  selected->round_rows_bf16(rt, x, M, K, xb);
}

void kiln_uk_linear_bf16x2(const KilnRuntimeContext *rt, const uint16_t *xb, const uint16_t *w, const float *bias,
                           float *y, int64_t M, int64_t K, int64_t N) {
  selected->linear_bf16x2(rt, xb, w, bias, y, M, K, N);
}
