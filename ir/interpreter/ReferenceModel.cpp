//===- ReferenceModel.cpp - prefill/decode over the interpreter -----------===//
#include "kiln/Interpreter/Interpreter.h"

#include "kiln/Support/Error.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

using namespace mlir;

namespace kiln {

ReferenceModel::ReferenceModel(ModuleOp module) : module_(module), interp_(module) {
  auto prefill = module.lookupSymbol<func::FuncOp>("prefill");
  auto decode = module.lookupSymbol<func::FuncOp>("decode");
  if (!prefill || !decode)
    throw Error("module needs @prefill and @decode functions");
  auto ids = cast<RankedTensorType>(prefill.getArgumentTypes()[0]).getShape();
  auto logits = cast<RankedTensorType>(prefill.getResultTypes()[0]).getShape();
  if (ids[0] != 1)
    throw Error("the reference driver runs batch 1 modules");
  promptLen_ = ids[1];
  vocab_ = logits.back();
  prefillAllLogits_ = logits[1] == promptLen_ && promptLen_ > 1;
  for (Type t : prefill.getArgumentTypes().drop_front(2)) {
    auto s = cast<RankedTensorType>(t).getShape();
    caches_.emplace_back(std::vector<int64_t>(s.begin(), s.end()));
    ctxLen_ = s[2];
  }
}

void ReferenceModel::reset() {
  for (auto &c : caches_)
    std::fill(c.data.begin(), c.data.end(), 0.0);
  position_ = 0;
}

std::vector<Tensor> ReferenceModel::run(const std::string &fn, const std::vector<int32_t> &ids, int64_t slots) {
  if (position_ + int64_t(ids.size()) > ctxLen_)
    throw Error("sequence of " + std::to_string(position_ + int64_t(ids.size())) +
                " tokens does not fit the context of " + std::to_string(ctxLen_));
  std::vector<Tensor> args = {Tensor({1, slots}, 0.0), Tensor({1, slots}, -1.0)};
  for (size_t i = 0; i < ids.size(); ++i) {
    args[0].data[i] = ids[i];
    args[1].data[i] = double(position_ + int64_t(i));
  }
  args.insert(args.end(), caches_.begin(), caches_.end());
  std::vector<Tensor> out = interp_.call(fn, args);
  for (size_t i = 0; i < caches_.size(); ++i)
    caches_[i] = std::move(out[i + 1]);
  position_ += int64_t(ids.size());
  return out;
}

std::vector<float> ReferenceModel::prefill(const std::vector<int32_t> &ids) {
  if (ids.empty())
    throw Error("prefill needs at least one token");
  // Check before the first chunk so a failed prefill leaves the cache as it was.
  if (position_ + int64_t(ids.size()) > ctxLen_)
    throw Error("sequence of " + std::to_string(position_ + int64_t(ids.size())) +
                " tokens does not fit the context of " + std::to_string(ctxLen_));
  std::vector<Tensor> out;
  for (size_t begin = 0; begin < ids.size(); begin += size_t(promptLen_)) {
    size_t end = std::min(ids.size(), begin + size_t(promptLen_));
    out = run("prefill", std::vector<int32_t>(ids.begin() + long(begin), ids.begin() + long(end)), promptLen_);
  }
  const Tensor &logits = out[0];
  // Last-only prefill gives [1, 1, V]; an all-logits one gives [1, P, V].
  size_t last = prefillAllLogits_ ? (ids.size() - 1) % size_t(promptLen_) : 0;
  return std::vector<float>(logits.data.begin() + long(last * size_t(vocab_)),
                            logits.data.begin() + long((last + 1) * size_t(vocab_)));
}

std::vector<float> ReferenceModel::decode(int32_t id) {
  std::vector<Tensor> out = run("decode", {id}, 1);
  return std::vector<float>(out[0].data.begin(), out[0].data.end());
}

std::vector<std::vector<double>> ReferenceModel::scoreAll(const std::vector<int32_t> &ids) {
  if (!prefillAllLogits_ || int64_t(ids.size()) > promptLen_)
    throw Error("scoring " + std::to_string(ids.size()) + " tokens needs an all-logits prefill of at least that many slots");
  reset();
  std::vector<Tensor> out = run("prefill", ids, promptLen_);
  reset();
  std::vector<std::vector<double>> rows(ids.size());
  for (size_t i = 0; i < ids.size(); ++i)
    rows[i].assign(out[0].data.begin() + long(i * size_t(vocab_)), out[0].data.begin() + long((i + 1) * size_t(vocab_)));
  return rows;
}

} // namespace kiln
