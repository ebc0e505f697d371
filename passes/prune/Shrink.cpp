//===- Shrink.cpp - shared by the structured pruning passes ----------------===//
#include "Shrink.h"

#include "kiln/Interpreter/Interpreter.h"
#include "kiln/IR/WeightValues.h"
#include "kiln/Support/Error.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;

namespace kiln {

void checkStructuredOptions(double fraction, const std::string &score, bool refit, const std::string &unit) {
  if (!(fraction > 0 && fraction < 1))
    throw Error("fraction must be in (0, 1), got " + std::to_string(fraction));
  if (score != "magnitude" && score != "activation" && score != "obs")
    throw Error("unknown score '" + score + "' (obs, activation, magnitude)");
  if (score == "obs" && !refit)
    throw Error("score=obs ranks " + unit + " by what the refit cannot recover: it needs refit=true");
}

void addToLinearBias(ModuleOp module, StringRef weightName, const std::vector<double> &delta,
                     std::unique_ptr<Checkpoint> &checkpoint) {
  GlobalOp bias;
  module.walk([&](LinearOp l) {
    GlobalOp w = globalOf(l.getWeight());
    if (w && w.getSymName() == weightName)
      bias = globalOf(l.getBias());
  });
  if (!bias)
    return;
  std::vector<double> v = readGlobalValues(bias, checkpoint);
  std::vector<float> f(v.size());
  for (size_t i = 0; i < v.size(); ++i)
    f[i] = float(v[i] + delta[i]);
  setInlineValues(bias, cast<RankedTensorType>(bias.getType()).getShape(), f);
}

namespace {
RankedTensorType withDim(Type t, int64_t dim, int64_t size) {
  auto r = cast<RankedTensorType>(t);
  SmallVector<int64_t> shape(r.getShape());
  shape[size_t(dim < 0 ? int64_t(shape.size()) + dim : dim)] = size;
  return RankedTensorType::get(shape, r.getElementType());
}
ArrayRef<int64_t> shapeOf(Value v) { return cast<RankedTensorType>(v.getType()).getShape(); }
} // namespace

void propagateShrunkTypes(ModuleOp module) {
  for (auto func : module.getOps<func::FuncOp>()) {
    for (Operation &op : func.getBody().getOps()) {
      llvm::TypeSwitch<Operation *>(&op)
          .Case<WeightOp>([](WeightOp w) { w.getResult().setType(cast<RankedTensorType>(globalOf(w).getType())); })
          .Case<LinearOp>([](LinearOp l) {
            l.getResult().setType(withDim(l.getType(), -1, shapeOf(l.getWeight())[1]));
          })
          .Case<SplitOp>([](SplitOp s) {
            int64_t part = shapeOf(s.getInput()).back() / int64_t(s.getNumResults());
            for (Value r : s.getResults())
              r.setType(withDim(r.getType(), -1, part));
          })
          .Case<SplitHeadsOp>([](SplitHeadsOp s) {
            int64_t headDim = shapeOf(s.getResult())[3];
            s.getResult().setType(withDim(s.getType(), 1, shapeOf(s.getInput()).back() / headDim));
          })
          .Case<CacheUpdateOp>([](CacheUpdateOp c) {
            int64_t heads = shapeOf(c.getUpdate())[1];
            if (auto arg = dyn_cast<BlockArgument>(c.getCache()); arg && shapeOf(arg)[1] != heads)
              arg.setType(withDim(arg.getType(), 1, heads));
            c.getResult().setType(c.getCache().getType());
          })
          .Case<MatMulOp>([](MatMulOp m) {
            auto rhs = shapeOf(m.getRhs());
            int64_t n = m.getTransposeRhs() ? rhs[rhs.size() - 2] : rhs.back();
            auto element = cast<RankedTensorType>(m.getType()).getElementType();
            m.getResult().setType(withDim(m.getLhs().getType().clone(element), -1, n));
          })
          .Case<ScaleOp, SoftmaxOp, GeluOp>([](Operation *o) { o->getResult(0).setType(o->getOperand(0).getType()); })
          .Case<CausalMaskOp>([](CausalMaskOp c) { c.getResult().setType(c.getScores().getType()); })
          .Case<AttentionOp>([](AttentionOp a) { a.getResult().setType(a.getQuery().getType()); })
          .Case<MergeHeadsOp>([](MergeHeadsOp m) {
            auto in = shapeOf(m.getInput());
            m.getResult().setType(withDim(m.getType(), -1, in[1] * in[3]));
          });
    }
    auto ret = cast<func::ReturnOp>(func.getBody().front().getTerminator());
    func.setType(FunctionType::get(module.getContext(), func.getBody().front().getArgumentTypes(),
                                   ret.getOperandTypes()));
  }
}

} // namespace kiln
