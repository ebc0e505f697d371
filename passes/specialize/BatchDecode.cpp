//===- BatchDecode.cpp - kiln-batch-decode --------------------------------===//
//
// decode -> decode_b<B>: a copy of the decode function whose activations,
// ids, positions and caches carry batch B instead of 1. Every kiln op is
// shape-generic in its leading (batch) dimension, so retyping the copy's
// values is the whole transformation; weights (kiln.weight) are not batched
// and stay shared. The verifier then checks the copy like any function.
//
//===----------------------------------------------------------------------===//
#include "kiln/Passes/Passes.h"
#include "kiln/Passes/Statistics.h"

#include "mlir/IR/Verifier.h"

#include <set>

namespace kiln {
#define GEN_PASS_DEF_BATCHDECODE
#include "kiln/Passes/SpecializePasses.h.inc"
} // namespace kiln

using namespace mlir;

namespace kiln {
namespace {

/// The type with leading dimension B, for batched values ([1, ...] tensors).
Type rebatch(Type t, int64_t B) {
  auto r = dyn_cast<RankedTensorType>(t);
  if (!r || r.getRank() < 2 || r.getShape()[0] != 1)
    return t;
  SmallVector<int64_t> shape(r.getShape());
  shape[0] = B;
  return RankedTensorType::get(shape, r.getElementType(), r.getEncoding());
}

struct BatchDecodePass : impl::BatchDecodeBase<BatchDecodePass> {
  using BatchDecodeBase::BatchDecodeBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto decode = module.lookupSymbol<func::FuncOp>("decode");
    if (!decode) {
      module.emitError("kiln-batch-decode: the module has no decode function");
      return signalPassFailure();
    }
    auto ids = dyn_cast<RankedTensorType>(decode.getArgumentTypes().front());
    if (!ids || ids.getRank() != 2 || ids.getShape()[0] != 1 || ids.getShape()[1] != 1) {
      decode.emitError("kiln-batch-decode: decode must take [1, 1] input ids");
      return signalPassFailure();
    }
    std::set<int64_t> done;
    uint64_t added = 0;
    for (int64_t B : sizes) {
      if (B == 1 || done.count(B))
        continue;
      if (B < 1 || B > kMaxDecodeBatch) {
        module.emitError("kiln-batch-decode: batch size ") << B << " is outside 1.." << kMaxDecodeBatch;
        return signalPassFailure();
      }
      done.insert(B);
      std::string name = "decode_b" + std::to_string(B);
      if (module.lookupSymbol(name)) {
        module.emitError("kiln-batch-decode: the module already has a function ") << name;
        return signalPassFailure();
      }
      OpBuilder b(module.getContext());
      b.setInsertionPointAfter(decode);
      auto copy = cast<func::FuncOp>(b.clone(*decode));
      copy.setSymName(name);
      for (BlockArgument arg : copy.getArguments())
        arg.setType(rebatch(arg.getType(), B));
      copy.walk([&](Operation *op) {
        if (isa<WeightOp>(op))
          return;
        for (Value r : op->getResults())
          r.setType(rebatch(r.getType(), B));
      });
      SmallVector<Type> inputs, results;
      for (BlockArgument arg : copy.getArguments())
        inputs.push_back(arg.getType());
      for (Type t : copy.getResultTypes())
        results.push_back(rebatch(t, B));
      copy.setFunctionType(FunctionType::get(module.getContext(), inputs, results));
      if (failed(verify(copy))) {
        copy.emitError("kiln-batch-decode: the batched copy of decode does not verify (an op that is not "
                       "shape-generic in its batch dimension)");
        return signalPassFailure();
      }
      ++added;
    }
    recordStatistic(getArgument().str(), "num-specializations", added);
  }
};

} // namespace
} // namespace kiln
