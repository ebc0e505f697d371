//===- MemoryPlan.cpp - where each value of a graph function lives --------===//
#include "kiln/Backend/MemoryPlan.h"

#include "kiln/IR/KilnOps.h"
#include "kiln/Support/Error.h"

#include "llvm/ADT/TypeSwitch.h"

#include <algorithm>
#include <vector>

using namespace mlir;

namespace kiln {

namespace {
int64_t numElements(Type t) { return cast<RankedTensorType>(t).getNumElements(); }
ArrayRef<int64_t> shapeOf(Value v) { return cast<RankedTensorType>(v.getType()).getShape(); }
int64_t lastDim(Value v) { return shapeOf(v).back(); }
} // namespace

MemoryPlan planMemory(func::FuncOp func, const std::string &who, int64_t alignment) {
  auto unsupported = [&](Operation *op, const std::string &why) {
    throw Error(who + ": cannot lower '" + op->getName().getStringRef().str() + "': " + why);
  };
  MemoryPlan plan;
  auto &places = plan.places;
  Block &body = func.getBody().front();
  auto ret = cast<func::ReturnOp>(body.getTerminator());
  // Batch B > 1: the decode specializations of kiln-batch-decode (one token per sequence).
  if (shapeOf(func.getArgument(0))[0] != 1 && shapeOf(func.getArgument(0))[1] != 1)
    unsupported(func, "a batch above 1 is supported for one token per sequence (decode) only");
  for (BlockArgument arg : func.getArguments()) {
    int buffer = arg.getArgNumber() == 0   ? kInputIdsBuffer
                 : arg.getArgNumber() == 1 ? kPositionsBuffer
                                           : kFirstCacheBuffer + int(arg.getArgNumber()) - 2;
    places[arg] = {buffer, 0, lastDim(arg), arg};
  }
  // Results: logits into the logits buffer, caches updated in place.
  Value logits = ret.getOperand(0);
  for (unsigned i = 1; i < ret.getNumOperands(); ++i) {
    auto update = ret.getOperand(i).getDefiningOp<CacheUpdateOp>();
    auto arg = update ? dyn_cast<BlockArgument>(update.getCache()) : BlockArgument();
    if (!arg || arg.getArgNumber() != i + 1)
      unsupported(ret, "result " + std::to_string(i) + " must be the in-place update of cache argument " +
                           std::to_string(i + 1));
  }

  // Views and allocations, with each root's last use.
  DenseMap<Operation *, int64_t> index;
  DenseMap<Value, int64_t> lastUse;
  int64_t i = 0;
  for (Operation &op : body)
    index[&op] = i++;
  std::vector<Value> roots;
  for (Operation &op : body) {
    for (Value r : op.getResults()) {
      llvm::TypeSwitch<Operation *>(&op)
          .Case<WeightOp>([&](auto) { places[r] = {kWeightsBuffer, 0, 0, r}; })
          .Case<SplitOp>([&](SplitOp s) {
            Place in = places.at(s.getInput());
            int64_t part = lastDim(r);
            places[r] = {in.buffer, in.offset + part * int64_t(cast<OpResult>(r).getResultNumber()), in.rowStride,
                         in.root};
          })
          .Case<SplitHeadsOp, MergeHeadsOp>([&](auto v) { places[r] = places.at(v->getOperand(0)); })
          .Case<CacheUpdateOp>([&](CacheUpdateOp c) { places[r] = places.at(c.getCache()); })
          .Default([&](Operation *) {
            int64_t cols = isa<AttentionOp>(op) ? shapeOf(r)[1] * shapeOf(r)[3] : lastDim(r);
            places[r] = {r == logits ? kLogitsBuffer : kArenaBuffer, 0, cols, r};
            if (r != logits)
              roots.push_back(r);
          });
    }
    for (Value operand : op.getOperands()) {
      Value root = places.at(operand).root;
      lastUse[root] = std::max(lastUse[root], index[&op]);
    }
  }
  // First fit by decreasing size over live intervals [def, last use].
  std::sort(roots.begin(), roots.end(),
            [](Value a, Value b) { return numElements(a.getType()) > numElements(b.getType()); });
  struct Allocation {
    int64_t begin, end, start, stop; // bytes, live interval
  };
  std::vector<Allocation> placed;
  for (Value r : roots) {
    int64_t bytes = (numElements(r.getType()) * 4 + alignment - 1) / alignment * alignment;
    int64_t start = index[r.getDefiningOp()], stop = std::max(start, lastUse[r]);
    std::vector<std::pair<int64_t, int64_t>> busy;
    for (const auto &p : placed)
      if (!(p.stop < start || stop < p.start))
        busy.push_back({p.begin, p.end});
    std::sort(busy.begin(), busy.end());
    int64_t at = 0;
    for (auto [b0, b1] : busy) {
      if (at + bytes <= b0)
        break;
      at = std::max(at, b1);
    }
    placed.push_back({at, at + bytes, start, stop});
    places[r].offset = at / 4;
    plan.arenaBytes = std::max<uint64_t>(plan.arenaBytes, uint64_t(at + bytes));
  }
  // Views inherit their root's final offset.
  for (auto &[v, p] : places)
    if (p.root != v && p.buffer == kArenaBuffer)
      p.offset += places.at(p.root).offset;
  return plan;
}

} // namespace kiln
