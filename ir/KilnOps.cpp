//===- KilnOps.cpp - kiln op verifiers ------------------------------------===//
//
// Verifiers check every shape relation the reference interpreter and the
// backends rely on, so a malformed module is rejected before it runs.
//
//===----------------------------------------------------------------------===//
#include "kiln/IR/KilnOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"

using namespace mlir;
using namespace kiln;

#include "kiln/IR/KilnEnums.cpp.inc"

#define GET_OP_CLASSES
#include "kiln/IR/KilnOps.cpp.inc"

namespace {
ArrayRef<int64_t> shapeOf(Value v) {
  return cast<RankedTensorType>(v.getType()).getShape();
}
ArrayRef<int64_t> shapeOf(Type t) { return cast<RankedTensorType>(t).getShape(); }

std::string shapeStr(ArrayRef<int64_t> shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? "x" : "") + std::to_string(shape[i]);
  return s + "]";
}

LogicalResult requireStatic(Operation *op) {
  auto check = [&](Type t) -> LogicalResult {
    if (auto rt = dyn_cast<RankedTensorType>(t); rt && !rt.hasStaticShape())
      return op->emitOpError("requires statically shaped tensors, got ") << t;
    return success();
  };
  for (Type t : op->getOperandTypes())
    if (failed(check(t)))
      return failure();
  for (Type t : op->getResultTypes())
    if (failed(check(t)))
      return failure();
  return success();
}

LogicalResult requireRank(Operation *op, Value v, int64_t rank, StringRef what) {
  if (shapeOf(v).size() != size_t(rank))
    return op->emitOpError() << what << " must have rank " << rank << ", got "
                             << shapeStr(shapeOf(v));
  return success();
}

/// Position ids [B, S] must match the batch and sequence of a [B, ..., S, ...] tensor.
LogicalResult checkPositions(Operation *op, Value positions, int64_t batch, int64_t seq) {
  auto p = shapeOf(positions);
  if (p.size() != 2 || p[0] != batch || p[1] != seq)
    return op->emitOpError("position_ids must be [") << batch << "x" << seq << "], got "
                                                    << shapeStr(p);
  return success();
}
} // namespace

LogicalResult GlobalOp::verify() {
  auto type = cast<RankedTensorType>(getType());
  if (!type.hasStaticShape())
    return emitOpError("requires a statically shaped type");
  if (auto value = getValueAttr(); value && value.getType() != type)
    return emitOpError("value type ") << value.getType() << " does not match " << type;
  if (getAdapter() && (!type.getElementType().isF32() || type.getRank() != 2 || !getValueAttr() || getQuantAttr() ||
                       getSparsityAttr()))
    return emitOpError("an adapter slot is a 2-D f32 weight with a value, neither quantized nor pruned");
  if (auto quant = getQuantAttr()) {
    auto format = quant.getAs<StringAttr>("format");
    auto group = quant.getAs<IntegerAttr>("group_size");
    auto symmetric = quant.getAs<BoolAttr>("symmetric");
    auto axis = quant.getAs<IntegerAttr>("axis");
    auto scales = quant.get("scales");
    if (!format || !group || !symmetric || !axis || quant.size() != 4u + (scales ? 1u : 0u))
      return emitOpError("quant must be {format, group_size, symmetric, axis} and optionally scales");
    StringRef f = format.getValue();
    if (f != "f16" && f != "bf16" && f != "int8" && f != "int4")
      return emitOpError("unknown quant format '") << f << "' (f16, bf16, int8, int4)";
    if (type.getRank() != 2)
      return emitOpError("only 2-D weights are quantized");
    if (axis.getInt() != 0 && axis.getInt() != 1)
      return emitOpError("quant axis must be 0 or 1");
    if (group.getInt() < 0)
      return emitOpError("quant group_size must be >= 0");
    if (f == "int8" && !symmetric.getValue())
      return emitOpError("int8 is symmetric only");
    if (scales) {
      auto dense = dyn_cast<DenseFPElementsAttr>(scales);
      int64_t length = type.getDimSize(axis.getInt()), channels = type.getDimSize(1 - axis.getInt());
      int64_t groups = group.getInt() > 0 ? (length + group.getInt() - 1) / group.getInt() : 1;
      if (!dense || dense.getNumElements() != channels * groups || !symmetric.getValue() || (f != "int8" && f != "int4"))
        return emitOpError("quant scales must be ") << channels * groups
                                                    << " floats (channels x groups) of a symmetric integer format";
    }
  }
  if (auto sparsity = getSparsityAttr()) {
    auto pattern = sparsity.getAs<StringAttr>("pattern");
    auto fraction = sparsity.getAs<FloatAttr>("sparsity");
    auto axis = sparsity.getAs<IntegerAttr>("axis");
    if (!pattern || !fraction || !axis || sparsity.size() != 3)
      return emitOpError("sparsity must be {pattern, sparsity, axis}");
    if (pattern.getValue() != "unstructured" && pattern.getValue() != "2:4")
      return emitOpError("unknown sparsity pattern '") << pattern.getValue() << "' (unstructured, 2:4)";
    if (type.getRank() != 2 || (axis.getInt() != 0 && axis.getInt() != 1))
      return emitOpError("sparsity needs a 2-D weight and axis 0 or 1");
  }
  return success();
}

LogicalResult WeightOp::verifySymbolUses(SymbolTableCollection &symbolTable) {
  auto global = symbolTable.lookupNearestSymbolFrom<GlobalOp>(*this, getGlobalAttr());
  if (!global)
    return emitOpError("refers to unknown weight @") << getGlobal();
  if (global.getType() != getType())
    return emitOpError("type ") << getType() << " does not match weight @" << getGlobal()
                                << " of type " << global.getType();
  return success();
}

LogicalResult EmbeddingOp::verify() {
  if (failed(requireStatic(*this)) || failed(requireRank(*this, getTable(), 2, "table")))
    return failure();
  auto ids = shapeOf(getIds()), table = shapeOf(getTable()), res = shapeOf(getType());
  SmallVector<int64_t> expected(ids.begin(), ids.end());
  expected.push_back(table[1]);
  if (res != ArrayRef<int64_t>(expected))
    return emitOpError("result must be ") << shapeStr(expected) << ", got " << shapeStr(res);
  return success();
}

LogicalResult LayerNormOp::verify() {
  if (failed(requireStatic(*this)))
    return failure();
  auto x = shapeOf(getInput());
  if (x.empty())
    return emitOpError("input must have rank >= 1");
  for (Value p : {getGamma(), getBeta()})
    if (shapeOf(p) != ArrayRef<int64_t>{x.back()})
      return emitOpError("gamma and beta must be [") << x.back() << "], got " << shapeStr(shapeOf(p));
  if (getType() != getInput().getType())
    return emitOpError("result type must equal the input type");
  if (getEpsilon().convertToDouble() <= 0)
    return emitOpError("epsilon must be positive");
  return success();
}

LogicalResult ResidualLayerNormOp::verify() {
  if (failed(requireStatic(*this)))
    return failure();
  auto x = shapeOf(getInput());
  if (getInput().getType() != getResidual().getType() || getSum().getType() != getInput().getType() ||
      getNormalized().getType() != getInput().getType())
    return emitOpError("input, residual and both results must have the same type");
  for (Value p : {getGamma(), getBeta()})
    if (shapeOf(p) != ArrayRef<int64_t>{x.back()})
      return emitOpError("gamma and beta must be [") << x.back() << "], got " << shapeStr(shapeOf(p));
  if (getEpsilon().convertToDouble() <= 0)
    return emitOpError("epsilon must be positive");
  return success();
}

OpFoldResult ScaleOp::fold(FoldAdaptor) {
  // Scaling by one is the identity.
  return getFactor().convertToDouble() == 1.0 ? getInput() : OpFoldResult();
}

/// input_quant / input_scale of kiln.linear and kiln.lm_head.
template <typename Op> static LogicalResult verifyInputQuant(Op op) {
  bool isStatic = op.getInputQuant() == InputQuantization::Static;
  if (isStatic != bool(op.getInputScale()))
    return op.emitOpError(isStatic ? "static input quantization needs an input_scale"
                                   : "input_scale is only meaningful with input_quant = static");
  if (isStatic && !(op.getInputScale()->convertToDouble() > 0))
    return op.emitOpError("input_scale must be > 0");
  return success();
}

LogicalResult LinearOp::verify() {
  if (failed(requireStatic(*this)) || failed(requireRank(*this, getWeight(), 2, "weight")))
    return failure();
  auto x = shapeOf(getInput()), w = shapeOf(getWeight()), res = shapeOf(getType());
  if (x.empty() || x.back() != w[0])
    return emitOpError("input ") << shapeStr(x) << " does not match weight [in, out] " << shapeStr(w);
  if (getBias() && shapeOf(getBias()) != ArrayRef<int64_t>{w[1]})
    return emitOpError("bias must be [") << w[1] << "], got " << shapeStr(shapeOf(getBias()));
  SmallVector<int64_t> expected(x.begin(), x.end());
  expected.back() = w[1];
  if (res != ArrayRef<int64_t>(expected))
    return emitOpError("result must be ") << shapeStr(expected) << ", got " << shapeStr(res);
  return verifyInputQuant(*this);
}

LogicalResult LMHeadOp::verify() {
  if (failed(requireStatic(*this)) || failed(requireRank(*this, getEmbedding(), 2, "embedding")))
    return failure();
  auto x = shapeOf(getInput()), e = shapeOf(getEmbedding()), res = shapeOf(getType());
  if (x.empty() || x.back() != e[1])
    return emitOpError("input ") << shapeStr(x) << " does not match embedding [vocab, dim] "
                                 << shapeStr(e);
  SmallVector<int64_t> expected(x.begin(), x.end());
  expected.back() = e[0];
  if (res != ArrayRef<int64_t>(expected))
    return emitOpError("result must be ") << shapeStr(expected) << ", got " << shapeStr(res);
  return verifyInputQuant(*this);
}

LogicalResult SplitOp::verify() {
  if (failed(requireStatic(*this)))
    return failure();
  auto x = shapeOf(getInput());
  size_t parts = getNumResults();
  if (parts == 0 || x.empty() || x.back() % int64_t(parts) != 0)
    return emitOpError("cannot split last axis of ") << shapeStr(x) << " into " << parts << " parts";
  SmallVector<int64_t> expected(x.begin(), x.end());
  expected.back() /= int64_t(parts);
  for (Type t : getResultTypes())
    if (shapeOf(t) != ArrayRef<int64_t>(expected))
      return emitOpError("each result must be ") << shapeStr(expected) << ", got " << shapeStr(shapeOf(t));
  return success();
}

LogicalResult SplitHeadsOp::verify() {
  if (failed(requireStatic(*this)) || failed(requireRank(*this, getInput(), 3, "input")) ||
      failed(requireRank(*this, getResult(), 4, "result")))
    return failure();
  auto x = shapeOf(getInput()), r = shapeOf(getType());
  if (r[0] != x[0] || r[2] != x[1] || r[1] * r[3] != x[2])
    return emitOpError("cannot split ") << shapeStr(x) << " into heads " << shapeStr(r);
  return success();
}

LogicalResult MergeHeadsOp::verify() {
  if (failed(requireStatic(*this)) || failed(requireRank(*this, getInput(), 4, "input")) ||
      failed(requireRank(*this, getResult(), 3, "result")))
    return failure();
  auto x = shapeOf(getInput()), r = shapeOf(getType());
  if (r[0] != x[0] || r[1] != x[2] || r[2] != x[1] * x[3])
    return emitOpError("cannot merge heads ") << shapeStr(x) << " into " << shapeStr(r);
  return success();
}

LogicalResult CacheUpdateOp::verify() {
  if (failed(requireStatic(*this)) || failed(requireRank(*this, getCache(), 4, "cache")) ||
      failed(requireRank(*this, getUpdate(), 4, "update")))
    return failure();
  auto c = shapeOf(getCache()), u = shapeOf(getUpdate());
  if (c[0] != u[0] || c[1] != u[1] || c[3] != u[3] || u[2] > c[2])
    return emitOpError("update ") << shapeStr(u) << " does not fit cache " << shapeStr(c);
  if (getType() != getCache().getType())
    return emitOpError("result type must equal the cache type");
  return checkPositions(*this, getPositionIds(), u[0], u[2]);
}

LogicalResult MatMulOp::verify() {
  if (failed(requireStatic(*this)))
    return failure();
  auto a = shapeOf(getLhs()), b = shapeOf(getRhs()), r = shapeOf(getType());
  if (a.size() < 2 || a.size() != b.size() || a.size() != r.size())
    return emitOpError("operands and result must have the same rank >= 2");
  size_t n = a.size();
  if (a.drop_back(2) != b.drop_back(2) || a.drop_back(2) != r.drop_back(2))
    return emitOpError("batch dimensions differ");
  int64_t k = a[n - 1];
  int64_t kb = getTransposeRhs() ? b[n - 1] : b[n - 2];
  int64_t nb = getTransposeRhs() ? b[n - 2] : b[n - 1];
  if (k != kb)
    return emitOpError("contraction sizes differ: ") << k << " vs " << kb;
  if (r[n - 2] != a[n - 2] || r[n - 1] != nb)
    return emitOpError("result must be [..., ") << a[n - 2] << ", " << nb << "], got " << shapeStr(r);
  return success();
}

LogicalResult CausalMaskOp::verify() {
  if (failed(requireStatic(*this)) || failed(requireRank(*this, getScores(), 4, "scores")))
    return failure();
  if (getType() != getScores().getType())
    return emitOpError("result type must equal the scores type");
  auto s = shapeOf(getScores());
  return checkPositions(*this, getPositionIds(), s[0], s[2]);
}

LogicalResult AttentionOp::verify() {
  if (failed(requireStatic(*this)))
    return failure();
  for (Value v : {getQuery(), getKeyCache(), getValueCache()})
    if (failed(requireRank(*this, v, 4, "query and caches")))
      return failure();
  auto q = shapeOf(getQuery()), k = shapeOf(getKeyCache()), v = shapeOf(getValueCache());
  if (k != v || q[0] != k[0] || q[1] != k[1] || q[3] != k[3])
    return emitOpError("query ") << shapeStr(q) << " and caches " << shapeStr(k) << ", "
                                 << shapeStr(v) << " do not match";
  if (getType() != getQuery().getType())
    return emitOpError("result type must equal the query type");
  return checkPositions(*this, getPositionIds(), q[0], q[2]);
}

LogicalResult SelectLastOp::verify() {
  if (failed(requireStatic(*this)) || failed(requireRank(*this, getInput(), 3, "input")))
    return failure();
  auto x = shapeOf(getInput()), r = shapeOf(getType());
  if (r != ArrayRef<int64_t>{x[0], 1, x[2]})
    return emitOpError("result must be [") << x[0] << "x1x" << x[2] << "], got " << shapeStr(r);
  return checkPositions(*this, getPositionIds(), x[0], x[1]);
}

namespace kiln {
GlobalOp globalOf(Value weight) {
  auto w = weight ? weight.getDefiningOp<WeightOp>() : WeightOp();
  return w ? SymbolTable::lookupNearestSymbolFrom<GlobalOp>(w, w.getGlobalAttr()) : GlobalOp();
}
} // namespace kiln
