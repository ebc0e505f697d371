//===- SpecializePasses.td - graph specializations ---------*- tablegen -*-===//
#ifndef KILN_SPECIALIZE_PASSES
#define KILN_SPECIALIZE_PASSES

include "mlir/Pass/PassBase.td"

def BatchDecode : Pass<"kiln-batch-decode", "mlir::ModuleOp"> {
  let summary = "Add decode specializations that step B sequences at once";
  let description = [{
    For each size B in `sizes` (B >= 2), clones the `decode` function into
    `decode_b<B>`: the same ops and the same weights, with batch dimension B
    on every activation, id, position and cache. Row b is sequence b: its
    token, its position and its KV cache, so one step reads every weight once
    for all B rows while attention stays per sequence. Runs after every other
    pass (it copies what they made of `decode`); `kiln compile --decode-batch`
    appends it. Backends pass each row's cache separately (docs/artifact.md).
  }];
  let options = [
    ListOption<"sizes", "sizes", "int64_t", "Batch sizes to add (each in 2..16; 1 is the decode function itself)">,
  ];
  let dependentDialects = ["::kiln::KilnDialect"];
}

#endif
