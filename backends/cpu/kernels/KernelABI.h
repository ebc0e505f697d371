/*===- KernelABI.h - the contract between generated code, kernels, runtime ===*
 *
 * Plain C, freestanding: compiled to LLVM bitcode for every target ISA and
 * linked into each artifact's model.so. The runtime includes it too (it
 * provides the KilnRuntimeContext and calls kiln_model_* entry points).
 *
 * Weight layout "panel16": a [K, N] matrix (x @ W) is stored as ceil(N/16)
 * panels, each [K][16] floats (columns n0..n0+15 of row k contiguous), the
 * last panel zero padded. One layout serves GEMV (decode) and GEMM (prefill).
 *===----------------------------------------------------------------------===*/
#ifndef KILN_KERNEL_ABI_H
#define KILN_KERNEL_ABI_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* 3: KilnRuntimeContext gained profile_mark/profiler (appended; the runtime
 * still loads ABI 2 model libraries, which never read them, without profiling). */
#define KILN_MODEL_ABI_VERSION 3
#define KILN_MODEL_ABI_OLDEST 2
#define KILN_PANEL 16
/* Linear kernels compute each of up to this many rows exactly as they
 * compute a single row (M = 1): a batched decode step (one row per
 * sequence) then gives every sequence the bits it gets decoding alone. */
#define KILN_DECODE_MAX_ROWS 16
/* Bytes of one group of 4 inputs of a 16-output panel in the "s24" layout:
 * values v0[16], v1[16] (f32), then one byte per output with the positions
 * in the group of its two values, i0 | i1 << 2. */
#define KILN_S24_GROUP_BYTES 144

/* Work-splitting callback the runtime provides: runs fn(arg, begin, end)
 * over [0, n) split across its thread pool, and returns when all are done. */
typedef void (*KilnTaskFn)(void *arg, int64_t begin, int64_t end);
/* Since model ABI 3, profile_mark: NULL, or called before each op of a graph
 * runs with KILN_PROFILE_EVENT(kind, layer), so the runtime can attribute the
 * time to the next mark (kiln bench --profile). A NULL test per op when off. */
typedef struct KilnRuntimeContext {
  void (*parallel_for)(void *pool, int64_t n, KilnTaskFn fn, void *arg);
  void *pool;
  int32_t threads;
  int32_t reserved;
  void (*profile_mark)(void *profiler, int32_t event);
  void *profiler;
} KilnRuntimeContext;

/* What a graph is doing from a profile mark on. Layers are the transformer
 * blocks (h.N); -1 for what lies outside them (embedding, final norm, head). */
enum KilnProfileKind {
  KILN_PROFILE_OTHER = 0,
  KILN_PROFILE_EMBEDDING,
  KILN_PROFILE_LAYER_NORM,
  KILN_PROFILE_ELEMENTWISE, /* residual adds, GELU (unfused or a linear's epilogue) */
  KILN_PROFILE_LINEAR_F32,
  KILN_PROFILE_LINEAR_F16,
  KILN_PROFILE_LINEAR_BF16,
  KILN_PROFILE_LINEAR_INT8,
  KILN_PROFILE_LINEAR_INT4,
  KILN_PROFILE_LINEAR_W8A8,
  KILN_PROFILE_LINEAR_W4A8,
  KILN_PROFILE_LINEAR_S24,
  KILN_PROFILE_QUANTIZE_ROWS, /* int8 activations, or bf16 ones (--cpu-math=bf16) */
  KILN_PROFILE_ATTENTION,
  KILN_PROFILE_CACHE_WRITE,
  KILN_PROFILE_LM_HEAD,
  KILN_PROFILE_SELECT_LAST,
  KILN_PROFILE_KINDS
};
#define KILN_PROFILE_EVENT(kind, layer) ((int32_t)(kind) | (int32_t)((layer) + 1) << 8)

/* CPU feature bits the runtime reports to kiln_model_init. */
enum {
  KILN_CPU_AVX2 = 1 << 0,    /* AVX2 + FMA + F16C */
  KILN_CPU_AVX512 = 1 << 1,  /* AVX-512 F, BW, VL, DQ */
  KILN_CPU_NEON = 1 << 2,
  KILN_CPU_AVX512VNNI = 1 << 3,
  KILN_CPU_AVX512BF16 = 1 << 4, /* vdpbf16ps, vcvtne2ps2bf16 */
};

/* Kernel variants, oldest to shiniest; kiln_model_init picks the best one
 * the CPU supports, or the one forced. */
enum { KILN_KERNELS_AUTO = -1, KILN_KERNELS_GENERIC = 0, KILN_KERNELS_AVX2 = 1, KILN_KERNELS_AVX512 = 2,
       KILN_KERNELS_NEON = 3, KILN_KERNELS_AVX512VNNI = 4, KILN_KERNELS_AVX512BF16 = 5 };

/* y[M, N] = x[M, K] @ W + bias (bias may be null); W in panel16 layout. */
typedef void (*KilnLinearFn)(const KilnRuntimeContext *rt, const float *x, const float *w, const float *bias,
                             float *y, int64_t M, int64_t K, int64_t N);
/* Causal attention over a KV cache. q: [S, H*D] rows (row stride q_stride
 * floats), caches [H, C, D], positions [S] (negative: padding, output 0),
 * out: [S, H*D]. */
typedef void (*KilnAttentionFn)(const KilnRuntimeContext *rt, const float *q, int64_t q_stride,
                                const float *k_cache, const float *v_cache, const int32_t *positions, float *out,
                                int64_t S, int64_t H, int64_t C, int64_t D, float scale);

/* KV caches in int8 (manifest model.kv_cache: int8): one buffer per cache of
 * [H][C][D] int8 values, padded to 64 bytes, then [H][C] float scales (one
 * per head per token). */
typedef void (*KilnAttentionQ8KVFn)(const KilnRuntimeContext *rt, const float *q, int64_t q_stride,
                                    const int8_t *k_cache, const int8_t *v_cache, const int32_t *positions,
                                    float *out, int64_t S, int64_t H, int64_t C, int64_t D, float scale);
/* Writes S tokens' rows (H heads of D values each, rows src_stride apart)
 * into an int8 cache at their positions, quantizing each head's row. */
typedef void (*KilnCacheWriteQ8Fn)(const KilnRuntimeContext *rt, const float *src, int64_t src_stride,
                                   const int32_t *positions, int64_t S, int8_t *cache, int64_t H, int64_t C,
                                   int64_t D);

/* y = x @ dequant(W) + bias for int8 per-output-channel weights ("panel16_q8"). */
typedef void (*KilnLinearQ8Fn)(const KilnRuntimeContext *rt, const float *x, const int8_t *w, const float *scale,
                               const float *bias, float *y, int64_t M, int64_t K, int64_t N);

/* y = x @ dequant(W) + bias for int4 weights in groups of G inputs (layout
 * "q4": one row of K/2 bytes per output channel, each 32 inputs k0.. as 16
 * bytes, byte i = k0+i | (k0+16+i) << 4; params: {scale, zero} floats per
 * channel per group, the last group may be short; element = (nibble - zero) *
 * scale). K % 32 == 0 and G % 32 == 0. */
typedef void (*KilnLinearQ4Fn)(const KilnRuntimeContext *rt, const float *x, const uint8_t *w, const float *params,
                               const float *bias, float *y, int64_t M, int64_t K, int64_t N, int64_t G);

/* W8A8, step 1: rows of x [M, K] quantized to int8 (activation
 * quantization of include/kiln/Quant/Quant.h; static_scale > 0 fixes the
 * scale, else one per row) into xq (rows of round_up(K, 4) bytes, in the
 * variant's own encoding) and scales [M]; with xsums (may be null), the sums
 * of the int8 values over each 32 inputs, [M][ceil(K / 32)]. */
typedef void (*KilnQuantizeRowsFn)(const KilnRuntimeContext *rt, const float *x, int64_t M, int64_t K,
                                   float static_scale, int8_t *xq, float *scales, int32_t *xsums);
/* W8A8, step 2: y = float(xq @ Wq) * xscale[m] * wscale[n] + bias, W int8
 * in "panel16_q8x4" panels ([Kp/4][16][4] per 16 outputs), wsum[n] = 128 *
 * sum_k Wq[k, n] (for unsigned-by-signed dot products). */
typedef void (*KilnLinearW8A8Fn)(const KilnRuntimeContext *rt, const int8_t *xq, const float *xscale,
                                 const int8_t *w, const float *wscale, const int32_t *wsum, const float *bias,
                                 float *y, int64_t M, int64_t K, int64_t N);

/* W4A8, step 2: y = x @ dequant(W) with int4 weights in "q4x4" panels (see
 * LinearW4A8.c; K % 32 == 0, G % 32 == 0) and the activations of step 1:
 * per group of G inputs an exact int32 dot product minus zero * xsum, scaled
 * in float. zeros null: symmetric (zero point 8). */
typedef void (*KilnLinearW4A8Fn)(const KilnRuntimeContext *rt, const int8_t *xq, const float *xscale,
                                 const int32_t *xsums, const uint8_t *w, const float *scales, const int32_t *zeros,
                                 const float *bias, float *y, int64_t M, int64_t K, int64_t N, int64_t G);

/* y = x @ W + bias for f16 or bf16 weights in "panel16" panels of 16-bit values. */
typedef void (*KilnLinearHalfFn)(const KilnRuntimeContext *rt, const float *x, const uint16_t *w, const float *bias,
                                 float *y, int64_t M, int64_t K, int64_t N);

/* Linears computed in bf16 (kiln compile --cpu-math=bf16), step 1: rows of
 * x [M, K] rounded to bf16 (nearest even, denormals to zero) into xb, rows of
 * round_up(K, 2) values, the pad 0. */
typedef void (*KilnRoundRowsBF16Fn)(const KilnRuntimeContext *rt, const float *x, int64_t M, int64_t K,
                                    uint16_t *xb);
/* Step 2: y = xb @ W + bias, W bf16 in "bf16x2" panels: per 16 outputs
 * [ceil(K/2)][16][2], inputs 2h and 2h+1 of an output side by side (the pad
 * 0); f32 sums of the exact products. */
typedef void (*KilnLinearBF16x2Fn)(const KilnRuntimeContext *rt, const uint16_t *xb, const uint16_t *w,
                                   const float *bias, float *y, int64_t M, int64_t K, int64_t N);

/* y = x @ W + bias for f32 weights with at most 2 nonzeros in every 4
 * consecutive inputs of each output, in the packed "s24" layout. */
typedef KilnLinearFn KilnLinearS24Fn;

/* y[i] = gelu(x[i]) (tanh form) for i < n; y may be x. With y_bf16 (else
 * null) the results go there instead, rounded as kiln_round_rows_bf16 does
 * (the input of a product computed in bf16). */
typedef void (*KilnGeluFn)(const KilnRuntimeContext *rt, const float *x, float *y, int64_t n, uint16_t *y_bf16);
/* Layer norm of `rows` rows of `cols` values (row strides xs, rs, ss, os):
 * with residual (else null), sum = x + residual is stored and normalised;
 * out = (v - mean) / sqrt(var + eps) * gamma + beta. Outputs may alias inputs.
 * With out_bf16 (else null) the normalised rows go there instead, `cols`
 * values each (cols even), rounded as kiln_round_rows_bf16 does. */
typedef void (*KilnLayerNormFn)(const KilnRuntimeContext *rt, const float *x, int64_t xs, const float *residual,
                                int64_t rs, float *sum, int64_t ss, const float *gamma, const float *beta, float *out,
                                int64_t os, int64_t rows, int64_t cols, float eps, uint16_t *out_bf16);

typedef struct KilnKernelTable {
  const char *name;
  KilnLinearFn linear;
  KilnAttentionFn attention;
  KilnLinearQ8Fn linear_q8;
  KilnLinearHalfFn linear_f16;
  KilnLinearHalfFn linear_bf16;
  KilnLinearQ4Fn linear_q4;
  KilnQuantizeRowsFn quantize_rows;
  KilnLinearW8A8Fn linear_w8a8;
  KilnLinearW4A8Fn linear_w4a8;
  KilnAttentionQ8KVFn attention_q8kv;
  KilnCacheWriteQ8Fn cache_write_q8;
  KilnLinearS24Fn linear_s24;
  KilnGeluFn gelu_tanh;
  KilnLayerNormFn layer_norm;
  KilnRoundRowsBF16Fn round_rows_bf16;
  KilnLinearBF16x2Fn linear_bf16x2;
} KilnKernelTable;

/* Entry points every model.so exports. */
uint32_t kiln_model_abi_version(void);
/* Picks the kernel variant (forced >= 0, or KILN_KERNELS_AUTO) for the CPU
 * features given; returns its name, or null if the CPU cannot run it. */
const char *kiln_model_init(uint64_t cpu_features, int32_t forced_variant);
/* A graph function: buffers[0] weights, [1] arena, [2] input_ids (i32),
 * [3] position_ids (i32), [4] logits, [5 + i] KV cache i (updated in place). */
typedef void (*KilnGraphFn)(void **buffers, const KilnRuntimeContext *rt);

/* Called by generated code; dispatch through the selected table. */
void kiln_uk_linear(const KilnRuntimeContext *rt, const float *x, const float *w, const float *bias, float *y,
                    int64_t M, int64_t K, int64_t N);
void kiln_uk_linear_q8(const KilnRuntimeContext *rt, const float *x, const int8_t *w, const float *scale,
                       const float *bias, float *y, int64_t M, int64_t K, int64_t N);
void kiln_uk_linear_q4(const KilnRuntimeContext *rt, const float *x, const uint8_t *w, const float *params,
                       const float *bias, float *y, int64_t M, int64_t K, int64_t N, int64_t G);
void kiln_uk_quantize_rows(const KilnRuntimeContext *rt, const float *x, int64_t M, int64_t K, float static_scale,
                           int8_t *xq, float *scales, int32_t *xsums);
void kiln_uk_linear_w4a8(const KilnRuntimeContext *rt, const int8_t *xq, const float *xscale, const int32_t *xsums,
                         const uint8_t *w, const float *scales, const int32_t *zeros, const float *bias, float *y,
                         int64_t M, int64_t K, int64_t N, int64_t G);
void kiln_uk_linear_w8a8(const KilnRuntimeContext *rt, const int8_t *xq, const float *xscale, const int8_t *w,
                         const float *wscale, const int32_t *wsum, const float *bias, float *y, int64_t M, int64_t K,
                         int64_t N);
void kiln_uk_linear_f16(const KilnRuntimeContext *rt, const float *x, const uint16_t *w, const float *bias, float *y,
                        int64_t M, int64_t K, int64_t N);
void kiln_uk_linear_bf16(const KilnRuntimeContext *rt, const float *x, const uint16_t *w, const float *bias, float *y,
                         int64_t M, int64_t K, int64_t N);
void kiln_uk_attention_q8kv(const KilnRuntimeContext *rt, const float *q, int64_t q_stride, const int8_t *k_cache,
                            const int8_t *v_cache, const int32_t *positions, float *out, int64_t S, int64_t H,
                            int64_t C, int64_t D, float scale);
void kiln_uk_cache_write_q8(const KilnRuntimeContext *rt, const float *src, int64_t src_stride,
                            const int32_t *positions, int64_t S, int8_t *cache, int64_t H, int64_t C, int64_t D);
void kiln_uk_linear_s24(const KilnRuntimeContext *rt, const float *x, const float *w, const float *bias, float *y,
                        int64_t M, int64_t K, int64_t N);
void kiln_uk_round_rows_bf16(const KilnRuntimeContext *rt, const float *x, int64_t M, int64_t K, uint16_t *xb);
void kiln_uk_linear_bf16x2(const KilnRuntimeContext *rt, const uint16_t *xb, const uint16_t *w, const float *bias,
                           float *y, int64_t M, int64_t K, int64_t N);
void kiln_uk_gelu_tanh(const KilnRuntimeContext *rt, const float *x, float *y, int64_t n, uint16_t *y_bf16);
void kiln_uk_layer_norm(const KilnRuntimeContext *rt, const float *x, int64_t xs, const float *residual, int64_t rs,
                        float *sum, int64_t ss, const float *gamma, const float *beta, float *out, int64_t os,
                        int64_t rows, int64_t cols, float eps, uint16_t *out_bf16);
void kiln_uk_attention(const KilnRuntimeContext *rt, const float *q, int64_t q_stride, const float *k_cache,
                       const float *v_cache, const int32_t *positions, float *out, int64_t S, int64_t H, int64_t C,
                       int64_t D, float scale);

#ifdef __cplusplus
}
#endif

#endif
