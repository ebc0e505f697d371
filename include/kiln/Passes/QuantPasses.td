//===- QuantPasses.td - kiln quantization passes --------------*- tablegen -*-===//
#ifndef KILN_QUANT_PASSES_TD
#define KILN_QUANT_PASSES_TD

include "mlir/Pass/PassBase.td"

def QuantizeWeights : Pass<"kiln-quantize-weights", "mlir::ModuleOp"> {
  let summary = "Give linear (and optionally LM head) weights a quantized storage format";
  let description = [{
    Marks the weight of every `kiln.linear` (and, with `include-lm-head`, the
    embedding the `kiln.lm_head` reads, which a tied model shares with the
    token embedding) with its format, for example

    ```mlir
    kiln.global @h.0.mlp.c_fc.weight : tensor<768x3072xf32>
        {quant = {axis = 0 : i64, format = "int4", group_size = 32 : i64, symmetric = true}}
    ```

    From then on the model computes with the quantized-dequantized weights
    (round to nearest, half to even; exact definitions in
    include/kiln/Quant/Quant.h): the reference interpreter reproduces what a
    backend's integer kernels compute. Groups run along the reduction axis.
  }];
  let options = [
    Option<"format", "format", "std::string", "\"int8\"", "f16, bf16, int8 or int4">,
    Option<"groupSize", "group-size", "int64_t", "0", "Elements per scale along the reduction axis (0: per channel)">,
    Option<"symmetric", "symmetric", "bool", "true", "Symmetric (no zero point); int8 is always symmetric">,
    Option<"includeLMHead", "include-lm-head", "bool", "false", "Also quantize the LM head (the tied embedding)">,
  ];
  let dependentDialects = ["::kiln::KilnDialect"];
  let statistics = [Statistic<"numQuantized", "num-quantized", "Weights given a quantized format">];
}

def QuantizeActivations : Pass<"kiln-quantize-activations", "mlir::ModuleOp"> {
  let summary = "Quantize the inputs of integer-weight products to int8 (W8A8, W4A8)";
  let description = [{
    Gives every `kiln.linear` an int8 input; its weight must be int8 per
    output channel or int4 (run `kiln-quantize-weights` first). The
    `kiln.lm_head` gets one too when its weights are integer
    (`include-lm-head`), and keeps its float input otherwise.

    ```mlir
    %y = kiln.linear %x, %w, %b {input_quant = 0 : i32} : ...  // 0: dynamic, 1: static
    ```

    `mode=dynamic` takes each row's (token's) own scale, max|x| / 127, at
    run time. `mode=static` fixes one scale per product, max|x| / 127 over
    calibration text run through the reference interpreter (before any
    activation is quantized); the text comes from the `calibration` option
    or `kiln compile --calibration FILE` (module attribute
    `kiln.calibration`). Products reading the same weight (the prefill and
    decode functions) share a scale. Values past the calibrated range clamp.
  }];
  let options = [
    Option<"mode", "mode", "std::string", "\"dynamic\"", "dynamic (per token) or static (calibrated)">,
    Option<"calibration", "calibration", "std::string", "\"\"", "Calibration text file (static mode)">,
    Option<"maxTokens", "max-tokens", "int64_t", "4096", "Calibration tokens to run at most">,
  ];
  let dependentDialects = ["::kiln::KilnDialect"];
  let statistics = [Statistic<"numQuantized", "num-quantized", "Products given an int8 input">];
}

def QuantizeKVCache : Pass<"kiln-quantize-kv-cache", "mlir::ModuleOp"> {
  let summary = "Store the KV cache in int8, one scale per head per token";
  let description = [{
    Gives every `kiln.cache_update` `format = int8`: each key and value row
    written to the cache (one head, one token) is kept as symmetric int8
    with its own scale. Attention then reads a quarter of the bytes; the
    reference interpreter computes with exactly the stored values.
  }];
  let options = [
    Option<"format", "format", "std::string", "\"int8\"", "int8 (f32 restores the default)">,
  ];
  let dependentDialects = ["::kiln::KilnDialect"];
  let statistics = [Statistic<"numQuantized", "num-quantized", "Cache updates given the format">];
}

#endif
