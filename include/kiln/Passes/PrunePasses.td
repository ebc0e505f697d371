//===- PrunePasses.td - pruning and distillation passes -------*- tablegen -*-===//
#ifndef KILN_PASSES_PRUNE_TD
#define KILN_PASSES_PRUNE_TD

include "mlir/Pass/PassBase.td"

def Prune : Pass<"kiln-prune", "mlir::ModuleOp"> {
  let summary = "Magnitude pruning of linear weights: unstructured or 2:4";
  let description = [{
    Zeroes the smallest-magnitude weights of every `kiln.linear` (and, with
    `include-lm-head`, the LM head) and attaches the pruned weights to their
    `kiln.global` as an inline `value`, with
    `sparsity = {pattern, sparsity, axis}`:

    - `pattern=unstructured`: the `sparsity` fraction of the weights, ranked
      over all pruned matrices together (`scope=global`) or within each one
      (`scope=layer`);
    - `pattern=2:4`: in every 4 consecutive weights along the reduction axis
      of each output, the 2 smallest are zeroed (a layout backends can pack).

    Ties break towards the lower index, so the result is deterministic. Run
    before quantization; kiln-distill then reconstructs what pruning lost.
  }];
  let options = [
    Option<"pattern", "pattern", "std::string", "\"unstructured\"", "unstructured or 2:4">,
    Option<"sparsity", "sparsity", "double", "0.5", "Fraction of weights zeroed (unstructured)">,
    Option<"scope", "scope", "std::string", "\"layer\"", "layer (each matrix) or global (all together)">,
    Option<"includeLMHead", "include-lm-head", "bool", "false", "Also prune the LM head (the tied embedding)">,
  ];
  let dependentDialects = ["::kiln::KilnDialect"];
  let statistics = [Statistic<"numPruned", "num-pruned", "Weights set to zero">];
}

def Distill : Pass<"kiln-distill", "mlir::ModuleOp"> {
  let summary = "Reconstruct pruned and quantized linear weights from the dense teacher (GPTQ / SparseGPT)";
  let description = [{
    Runs after kiln-prune and/or kiln-quantize-weights and redoes what they
    decided for every `kiln.linear`, layer by layer, so that the student's
    outputs match the teacher's on calibration text. The teacher is the
    module with every pruned value, quantized format and int8 activation
    removed (the dense f32 model). Its inputs to each linear, X, give
    H = X^T X (plus `damp` times its mean diagonal); the weights are then
    quantized / pruned one input row at a time, each row's error spread
    over the rows not yet processed through the Cholesky factor of H^-1
    (optimal brain surgeon updates, as GPTQ and SparseGPT do). Pruning masks
    are re-chosen per block of `block` rows by w^2 / [H^-1]_kk^2 at the
    sparsity kiln-prune recorded (2:4 per group of 4); integer groups get
    their scales when first reached, recorded as `quant.scales`. Symmetric
    formats only. Text: the `calibration` option or `kiln compile
    --calibration FILE`.

    With `sequential` (GPTQ's sequential mode) the blocks (`h.N`) are
    reconstructed in order, each from the inputs the student gives it: one
    calibration run per block, with the blocks before it already
    reconstructed (quantized, pruned, int8 activations and KV cache as the
    student computes them) and this block dense. By default one run of the
    dense teacher gives every layer's inputs. On the tiny model sequential
    lowers int4-g32's KL from 4.69e-4 to 4.34e-4 but raises 2:4's from
    1.72e-2 to 1.83e-2 (50% unstructured: 8.25e-3 and 8.22e-3).
  }];
  let options = [
    Option<"calibration", "calibration", "std::string", "\"\"", "Calibration text file">,
    Option<"maxTokens", "max-tokens", "int64_t", "4096", "Calibration tokens to run at most">,
    Option<"damp", "damp", "double", "0.01", "Dampening of H, relative to its mean diagonal">,
    Option<"block", "block", "int64_t", "128", "Rows per mask-selection block (unstructured pruning)">,
    Option<"sequential", "sequential", "bool", "false", "Block by block from the student's inputs (else all from the teacher's)">,
  ];
  let dependentDialects = ["::kiln::KilnDialect"];
  let statistics = [Statistic<"numReconstructed", "num-reconstructed", "Weight matrices reconstructed">];
}

def PruneMLP : Pass<"kiln-prune-mlp", "mlir::ModuleOp"> {
  let summary = "Structured pruning of MLP neurons, shrinking the IR, with a least-squares refit";
  let description = [{
    For every MLP (`kiln.linear` A, GELU, `kiln.linear` B, found in each
    function and matched by weight name) removes `fraction` of the hidden
    neurons: A's columns and bias entries and B's rows go, and the globals,
    weights, ops and their result types shrink to the kept width, so the
    model really is smaller. Neurons are chosen by `score=obs` (the
    default: greedy optimal brain surgeon on the calibration activations,
    removing one at a time the neuron the others compensate best, cost
    |B_i|^2 / [G^-1]_ii with G their Gram matrix; needs `refit`),
    `score=activation` (lowest mean |GELU output i| times |B[i, :]|) or
    `score=magnitude` (lowest |A[:, i]| |B[i, :]|, no calibration). With `refit` (needs
    calibration text), B's kept rows and its bias are re-solved by least
    squares so that the kept neurons reproduce the dense MLP's output on the
    calibration activations: (H_S^T H_S + damp) [B'; b'] = H_S^T (H B) with
    H_S the kept activations and a column of ones.
  }];
  let options = [
    Option<"fraction", "fraction", "double", "0.5", "Fraction of the hidden neurons removed">,
    Option<"score", "score", "std::string", "\"obs\"", "obs, activation (calibration) or magnitude">,
    Option<"refit", "refit", "bool", "true", "Least-squares refit of the output projection (calibration)">,
    Option<"calibration", "calibration", "std::string", "\"\"", "Calibration text file">,
    Option<"maxTokens", "max-tokens", "int64_t", "4096", "Calibration tokens to run at most">,
    Option<"damp", "damp", "double", "0.001", "Dampening of the normal equations, relative to their mean diagonal">,
  ];
  let dependentDialects = ["::kiln::KilnDialect"];
  let statistics = [Statistic<"numRemoved", "num-removed", "Hidden neurons removed">];
}

def PruneHeads : Pass<"kiln-prune-heads", "mlir::ModuleOp"> {
  let summary = "Structured pruning of attention heads, shrinking the IR and the KV caches, with a least-squares refit";
  let description = [{
    For every attention block (the fused QKV `kiln.linear` A, `kiln.split`,
    `kiln.split_heads`, attention, `kiln.merge_heads`, the output
    `kiln.linear` O; matched by weight name, fused or not) removes whole
    heads: head h's query, key and value columns of A and its bias entries
    and its D rows of O go, and the globals, ops, result types and the
    function's KV cache arguments and results shrink to the kept heads, so
    the weights, the compute and the retained cache all get smaller (layers
    may keep different numbers of heads; the CPU backend records them in the
    manifest's `cache_heads`).

    `fraction` of each layer's heads are removed (`scope=layer`, the
    default), or of all heads ranked over all layers together
    (`scope=global`, every layer keeping at least `min-heads`; the costs
    are each block's own output error, blind to how errors grow
    downstream, so on the tiny model it loses to `layer`). Heads are chosen by `score=obs`
    (the default: greedy group optimal brain surgeon on the calibration
    inputs of O, removing one head at a time the one the others compensate
    best, cost trace(O_h^T [G^-1]_hh^-1 O_h) with G their Gram matrix;
    needs `refit`), `score=activation` (smallest mean squared contribution
    to the residual stream, trace(O_h^T G_hh O_h) / tokens) or
    `score=magnitude` (smallest |V_h| |O_h|, Frobenius norms; no
    calibration). With `refit` (needs calibration text) O's kept rows and
    its bias are re-solved by least squares so that the kept heads reproduce
    the dense block's output on the calibration inputs, as kiln-prune-mlp
    does for MLPs.
  }];
  let options = [
    Option<"fraction", "fraction", "double", "0.25", "Fraction of all attention heads removed">,
    Option<"scope", "scope", "std::string", "\"layer\"", "layer (the same fraction of each layer's heads) or global (rank all heads together)">,
    Option<"minHeads", "min-heads", "int64_t", "1", "Heads every layer keeps at least (scope=global)">,
    Option<"score", "score", "std::string", "\"obs\"", "obs, activation (calibration) or magnitude">,
    Option<"refit", "refit", "bool", "true", "Least-squares refit of the output projection (calibration)">,
    Option<"calibration", "calibration", "std::string", "\"\"", "Calibration text file">,
    Option<"maxTokens", "max-tokens", "int64_t", "4096", "Calibration tokens to run at most">,
    Option<"damp", "damp", "double", "0.001", "Dampening of the normal equations, relative to their mean diagonal">,
  ];
  let dependentDialects = ["::kiln::KilnDialect"];
  let statistics = [Statistic<"numRemoved", "num-removed", "Attention heads removed">];
}


def KeepTeacher : Pass<"kiln-keep-teacher", "mlir::ModuleOp"> {
  let summary = "Keep a copy of the module as the teacher of a later kiln-distill-kd";
  let description = [{
    Snapshots the module as it is (the dense model, before the lossy passes
    that follow) for `kiln-distill-kd` later in the same pipeline, which
    takes it. The module itself is not changed. Pipelines that distil end to
    end start with it.
  }];
}

def DistillKD : Pass<"kiln-distill-kd", "mlir::ModuleOp"> {
  let summary = "End-to-end knowledge distillation: train a few parameters of the student to match the teacher";
  let description = [{
    Minimizes KL(teacher || student) of the next-token distributions over
    windows of the calibration text, through the whole network, by Adam on
    the parameters `train` names: `ln` (every layer norm's gain and bias),
    `bias` (every linear's bias) and `lora` (a low-rank branch
    `linear(linear(x, A), B)` of rank `rank` beside every linear, or those
    `targets` names by the end of their module name as PEFT's
    `target_modules` does (`c_attn`, `mlp.c_proj`, `h.0.attn.c_attn`), A seeded
    small and B zero so training starts from the student). After training a
    branch beside a plain float weight is merged into it (W += A B) unless
    `merge=false`; beside a quantized or pruned weight it stays in the IR as
    f32 weights (`<weight>.kd_A` [in, r], `.kd_B` [r, out]), so the base keeps
    its grid and its zeros. The teacher is the module as
    `kiln-keep-teacher` kept it earlier in the pipeline; the student is the
    module as the passes between left it: pruned weights stay exactly zero
    and shrunk shapes stay shrunk (base weights are not trained), quantized
    weights compute with their effective values, and int8 activations and
    KV-cache rows are rounded in the forward pass and passed straight through
    in the backward pass. Forward and backward run in float32 with OpenBLAS
    products (passes/distill/kd/Tape.h).

    Each step takes `batch` windows of `window` tokens, drawn with the seeded
    generator from the text's non-overlapping windows; the learning rate
    warms up linearly over the first tenth of the steps and then decays
    linearly to zero. The result depends only on the seed and the thread
    count. Statistics: the mean KL per token
    on the first `eval-windows` windows before and after (in 1e-9 nats).
  }];
  let options = [
    Option<"calibration", "calibration", "std::string", "\"\"", "Calibration text file">,
    Option<"maxTokens", "max-tokens", "int64_t", "0", "Calibration tokens to use at most (0: all)">,
    Option<"steps", "steps", "int64_t", "150", "Adam steps">,
    Option<"learningRate", "lr", "double", "1e-3", "Adam learning rate">,
    Option<"batch", "batch", "int64_t", "4", "Windows per step">,
    Option<"window", "window", "int64_t", "128", "Tokens per window (at most the model's n_positions)">,
    Option<"seed", "seed", "uint64_t", "0", "Seed of the window draws and of the lora A factors">,
    Option<"train", "train", "std::string", "\"ln,bias,lora\"", "Trainable sets: ln, bias, lora (comma separated)">,
    Option<"rank", "rank", "int64_t", "8", "Rank of the lora set's branches">,
    Option<"targets", "targets", "std::string", "\"\"", "Linears the lora set trains, by the end of their module name as PEFT's target_modules (c_attn,mlp.c_proj,...; empty: all)">,
    Option<"merge", "merge", "bool", "true", "Merge lora branches into plain float weights">,
    Option<"evalWindows", "eval-windows", "int64_t", "8", "Windows the KL before and after is measured on">,
    Option<"threads", "threads", "int64_t", "0", "Threads of the BLAS products and the KL rows (0: all cores)">,
  ];
  let dependentDialects = ["::kiln::KilnDialect"];
}

#endif
