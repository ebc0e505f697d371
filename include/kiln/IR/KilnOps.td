//===- KilnOps.td - kiln dialect operations -------------------*- tablegen -*-===//
#ifndef KILN_OPS_TD
#define KILN_OPS_TD

include "kiln/IR/KilnDialect.td"
include "mlir/IR/SymbolInterfaces.td"
include "mlir/IR/BuiltinAttributes.td"
include "mlir/IR/EnumAttr.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"

def Kiln_FloatTensor : RankedTensorOf<[F32, F16, BF16, F64]>;
def Kiln_ActTensor : RankedTensorOf<[F32, F64]>;
def Kiln_IdTensor : RankedTensorOf<[I32, I64]>;

//===----------------------------------------------------------------------===//
// Weight table
//===----------------------------------------------------------------------===//

def Kiln_GlobalOp : Kiln_Op<"global", [Symbol]> {
  let summary = "An entry of the module's weight table";
  let description = [{
    Declares a weight by its checkpoint tensor name (the symbol) and its type.
    Without `value`, the data is read from the checkpoint named by the module
    attribute `kiln.checkpoint` (mmapped; never copied into the IR). Passes
    that compute new weights attach them as `value` (for example a
    `dense_resource` blob).

    `quant` (set by kiln-quantize-weights) is the weight's storage format:
    `{format = "int4", group_size = 32, symmetric = true, axis = 0}`, where
    `axis` is the reduction axis of the matrix product that reads it. The
    model then computes with the quantized-dequantized values defined in
    include/kiln/Quant/Quant.h, and backends pick kernels by the format.

    `sparsity` (set by kiln-prune) records how the inline `value` was pruned:
    `{pattern = "2:4", sparsity = 0.5, axis = 0}` (at most 2 nonzeros in
    every 4 consecutive values along the reduction axis, which backends may
    pack) or `{pattern = "unstructured", ...}`; kiln-distill reads it to
    choose its mask. `quant` may carry `scales` (per channel per group,
    channel-major) that override the round-to-nearest ones, as
    kiln-distill's reconstructed weights do.

    `adapter` marks a switchable LoRA slot (`kiln compile --adapters`): an
    f32 factor of the low-rank branch beside a linear, `lora_A` [in, r] or
    `lora_B` [r, out] with the adapter's scale folded into B. Its `value` is
    the base model's (zeros); the module attribute `kiln.adapters` holds each
    adapter's values, and a session picks one at run time (docs/adapters.md).

    ```mlir
    kiln.global @"h.0.attn.c_attn.weight" : tensor<128x384xf32>
    kiln.global @"h.0.mlp.c_fc.weight" : tensor<128x512xf32> {quant = {axis = 0 : i64, format = "int8", group_size = 0 : i64, symmetric = true}}
    ```
  }];
  let arguments = (ins SymbolNameAttr:$sym_name, TypeAttrOf<AnyRankedTensor>:$type,
                       OptionalAttr<ElementsAttr>:$value, OptionalAttr<DictionaryAttr>:$quant,
                       OptionalAttr<DictionaryAttr>:$sparsity, UnitAttr:$adapter);
  let assemblyFormat = "$sym_name `:` $type (`=` $value^)? attr-dict";
  let hasVerifier = 1;
}

def Kiln_WeightOp : Kiln_Op<"weight",
    [Pure, DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "Reads a weight declared by kiln.global";
  let arguments = (ins FlatSymbolRefAttr:$global);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "$global attr-dict `:` type($result)";
}

//===----------------------------------------------------------------------===//
// Embeddings and normalisation
//===----------------------------------------------------------------------===//

def Kiln_EmbeddingOp : Kiln_Op<"embedding", [Pure]> {
  let summary = "Gathers rows of a [rows, dim] table by id";
  let description = [{
    `result[b, s, :] = table[ids[b, s], :]`. A negative id (a padding slot)
    gives a zero row. Used for token (`wte`) and position (`wpe`) embeddings.
  }];
  let arguments = (ins Kiln_FloatTensor:$table, Kiln_IdTensor:$ids);
  let results = (outs Kiln_ActTensor:$result);
  let assemblyFormat = "$table `[` $ids `]` attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Kiln_LayerNormOp : Kiln_Op<"layer_norm", [Pure]> {
  let summary = "Layer normalisation over the last axis";
  let description = [{
    `(x - mean) / sqrt(var + epsilon) * gamma + beta`, with the biased
    variance, over the last axis.
  }];
  let arguments = (ins Kiln_ActTensor:$input, Kiln_FloatTensor:$gamma,
                       Kiln_FloatTensor:$beta, F64Attr:$epsilon);
  let results = (outs Kiln_ActTensor:$result);
  let assemblyFormat = "$input `,` $gamma `,` $beta attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Kiln_ResidualLayerNormOp : Kiln_Op<"residual_layer_norm", [Pure]> {
  let summary = "Residual add fused with the layer norm of its sum";
  let description = [{
    `sum = input + residual; normalized = layer_norm(sum, gamma, beta)`, both
    returned (the sum feeds the next residual connection). Produced by
    kiln-fuse-residual-layer-norm; one pass over memory instead of two.
  }];
  let arguments = (ins Kiln_ActTensor:$input, Kiln_ActTensor:$residual, Kiln_FloatTensor:$gamma,
                       Kiln_FloatTensor:$beta, F64Attr:$epsilon);
  let results = (outs Kiln_ActTensor:$sum, Kiln_ActTensor:$normalized);
  let assemblyFormat = "$input `,` $residual `,` $gamma `,` $beta attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Dense layers
//===----------------------------------------------------------------------===//

def Kiln_GeluApproximation : I32EnumAttr<"GeluApproximation", "GELU formula", [
    I32EnumAttrCase<"tanh", 0>, I32EnumAttrCase<"erf", 1>]> {
  let cppNamespace = "::kiln";
}

def Kiln_InputQuantization : I32EnumAttr<"InputQuantization", "int8 activation quantization of a linear's input", [
    I32EnumAttrCase<"Dynamic", 0, "dynamic">, I32EnumAttrCase<"Static", 1, "static">]> {
  let cppNamespace = "::kiln";
}

def Kiln_LinearOp : Kiln_Op<"linear", [Pure]> {
  let summary = "x @ W + b with W stored [in, out]";
  let description = [{
    `result[..., n] = sum_k input[..., k] * weight[k, n] + bias[n]`. The
    weight keeps Hugging Face's Conv1D layout `[in, out]`, so the checkpoint
    is referenced without a transposed copy; backends repack it for their
    kernels. The bias is optional. With `gelu_epilogue` (set by
    kiln-fuse-linear-gelu) the GELU of that formula is applied to the result.

    With `input_quant` (set by kiln-quantize-activations) each row of the
    input is first replaced by its symmetric int8 quantization `q * s`,
    `q = clamp(rne(x / s), -127, 127)` in float32: `dynamic` takes
    `s = max|row| / 127` per row (per token), `static` the calibrated
    `input_scale`. With int8 weights this is W8A8: backends compute the
    product with integer dot products.
  }];
  let arguments = (ins Kiln_ActTensor:$input, Kiln_FloatTensor:$weight,
                       Optional<Kiln_FloatTensor>:$bias,
                       OptionalAttr<Kiln_GeluApproximation>:$gelu_epilogue,
                       OptionalAttr<Kiln_InputQuantization>:$input_quant,
                       OptionalAttr<F32Attr>:$input_scale);
  let results = (outs Kiln_ActTensor:$result);
  let assemblyFormat = "$input `,` $weight (`,` $bias^)? attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Kiln_LMHeadOp : Kiln_Op<"lm_head", [Pure]> {
  let summary = "Logits: x @ E^T with E stored [vocab, dim]";
  let description = [{
    `result[..., v] = sum_k input[..., k] * embedding[v, k]`. With tied
    embeddings `embedding` is the token embedding table `wte`.
    `input_quant` and `input_scale` quantize the input rows to int8 exactly
    as for `kiln.linear`.
  }];
  let arguments = (ins Kiln_ActTensor:$input, Kiln_FloatTensor:$embedding,
                       OptionalAttr<Kiln_InputQuantization>:$input_quant,
                       OptionalAttr<F32Attr>:$input_scale);
  let results = (outs Kiln_ActTensor:$result);
  let assemblyFormat = "$input `,` $embedding attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Kiln_GeluOp : Kiln_Op<"gelu", [Pure, SameOperandsAndResultType]> {
  let summary = "GELU activation";
  let description = [{
    `tanh`: `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`, exactly
    Hugging Face's `gelu_new`; `erf`: `0.5 x (1 + erf(x / sqrt(2)))`.
  }];
  let arguments = (ins Kiln_ActTensor:$input,
                       DefaultValuedAttr<Kiln_GeluApproximation, "GeluApproximation::tanh">:$approximation);
  let results = (outs Kiln_ActTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input)";
}

def Kiln_AddOp : Kiln_Op<"add", [Pure, Commutative, SameOperandsAndResultType]> {
  let summary = "Element-wise addition (residual connections)";
  let arguments = (ins Kiln_ActTensor:$lhs, Kiln_ActTensor:$rhs);
  let results = (outs Kiln_ActTensor:$result);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` type($result)";
}

def Kiln_ScaleOp : Kiln_Op<"scale", [Pure, SameOperandsAndResultType]> {
  let summary = "Multiplies every element by a constant";
  let arguments = (ins Kiln_ActTensor:$input, F64Attr:$factor);
  let results = (outs Kiln_ActTensor:$result);
  let assemblyFormat = "$input `,` $factor attr-dict `:` type($input)";
  let hasFolder = 1;
}

//===----------------------------------------------------------------------===//
// Attention pieces
//===----------------------------------------------------------------------===//

def Kiln_SplitOp : Kiln_Op<"split", [Pure]> {
  let summary = "Splits the last axis into equal contiguous parts";
  let description = [{
    Splits the fused QKV projection `[B, S, 3E]` into q, k and v `[B, S, E]`.
    The number of parts is the number of results.
  }];
  let arguments = (ins Kiln_ActTensor:$input);
  let results = (outs Variadic<Kiln_ActTensor>:$results);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($results)";
  let hasVerifier = 1;
}

def Kiln_SplitHeadsOp : Kiln_Op<"split_heads", [Pure]> {
  let summary = "[B, S, H*D] -> [B, H, S, D]";
  let description = [{
    Head `h` is the contiguous slice `[h*D, (h+1)*D)` of the last axis. The
    number of heads is read from the result type.
  }];
  let arguments = (ins Kiln_ActTensor:$input);
  let results = (outs Kiln_ActTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
}

def Kiln_MergeHeadsOp : Kiln_Op<"merge_heads", [Pure]> {
  let summary = "[B, H, S, D] -> [B, S, H*D]";
  let arguments = (ins Kiln_ActTensor:$input);
  let results = (outs Kiln_ActTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
}

def Kiln_CacheFormat : I32EnumAttr<"CacheFormat", "storage format of a KV cache", [
    I32EnumAttrCase<"f32", 0>, I32EnumAttrCase<"int8", 1>]> {
  let cppNamespace = "::kiln";
}

def Kiln_CacheUpdateOp : Kiln_Op<"cache_update", [Pure]> {
  let summary = "Writes new keys or values into a retained KV cache";
  let description = [{
    `result = cache` except `result[b, h, position_ids[b, s], :] =
    update[b, h, s, :]` for every `s` whose position id is not negative.
    Cache `[B, H, C, D]`, update `[B, H, S, D]`, position ids `[B, S]`.
    With `format = int8` (set by kiln-quantize-kv-cache) each written row of
    D values (one head, one token) is stored as its symmetric int8
    quantization with its own scale, max|row| / 127 (the math of
    include/kiln/Quant/Quant.h's quantizeActivationRow): the cache holds
    `q * scale`, and backends store the int8 values and one scale per row.
  }];
  let arguments = (ins Kiln_ActTensor:$cache, Kiln_ActTensor:$update, Kiln_IdTensor:$position_ids,
                       DefaultValuedAttr<Kiln_CacheFormat, "CacheFormat::f32">:$format);
  let results = (outs Kiln_ActTensor:$result);
  let assemblyFormat = "$cache `[` $position_ids `]` `,` $update attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Kiln_MatMulOp : Kiln_Op<"matmul", [Pure]> {
  let summary = "Batched matrix product over the last two axes";
  let description = [{
    `[..., M, K] x [..., K, N] -> [..., M, N]`; with `transpose_rhs` the
    right operand is `[..., N, K]` (QK^T reads the key cache as stored).
  }];
  let arguments = (ins Kiln_ActTensor:$lhs, Kiln_ActTensor:$rhs, UnitAttr:$transpose_rhs);
  let results = (outs Kiln_ActTensor:$result);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Kiln_CausalMaskOp : Kiln_Op<"causal_mask", [Pure]> {
  let summary = "Masks attention scores of future cache positions";
  let description = [{
    Scores `[B, H, S, C]`; `result[b, h, s, c] = -inf` where
    `c > position_ids[b, s]` (and for the whole row of a padding slot, whose
    position id is negative), `scores[b, h, s, c]` elsewhere.
  }];
  let arguments = (ins Kiln_ActTensor:$scores, Kiln_IdTensor:$position_ids);
  let results = (outs Kiln_ActTensor:$result);
  let assemblyFormat = "$scores `,` $position_ids attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Kiln_SoftmaxOp : Kiln_Op<"softmax", [Pure, SameOperandsAndResultType]> {
  let summary = "Softmax over the last axis; an all -inf row gives zeros";
  let arguments = (ins Kiln_ActTensor:$input);
  let results = (outs Kiln_ActTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input)";
}

def Kiln_AttentionOp : Kiln_Op<"attention", [Pure]> {
  let summary = "Fused causal attention over a retained KV cache";
  let description = [{
    `softmax(causal_mask(scale * q @ k_cache^T, position_ids)) @ v_cache`
    with q `[B, H, S, D]`, caches `[B, H, C, D]`, position ids `[B, S]`.
    Produced by fusion; backends implement it flash-style.
  }];
  let arguments = (ins Kiln_ActTensor:$query, Kiln_ActTensor:$key_cache,
                       Kiln_ActTensor:$value_cache, Kiln_IdTensor:$position_ids, F64Attr:$scale);
  let results = (outs Kiln_ActTensor:$result);
  let assemblyFormat = "$query `,` $key_cache `,` $value_cache `,` $position_ids attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Kiln_SelectLastOp : Kiln_Op<"select_last", [Pure]> {
  let summary = "Keeps the row of the last real token";
  let description = [{
    `[B, S, E] -> [B, 1, E]`: for each batch row, the slot with the largest
    position id, so prefill computes logits only where they are used.
  }];
  let arguments = (ins Kiln_ActTensor:$input, Kiln_IdTensor:$position_ids);
  let results = (outs Kiln_ActTensor:$result);
  let assemblyFormat = "$input `,` $position_ids attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

#endif // KILN_OPS_TD
