//===- WeightValues.cpp - passes that compute new weights -------------------===//
#include "kiln/IR/WeightValues.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"

#include <algorithm>

using namespace mlir;

namespace kiln {

void setInlineValues(GlobalOp global, ArrayRef<int64_t> shape, ArrayRef<float> values) {
  auto element = cast<FloatType>(cast<RankedTensorType>(global.getType()).getElementType());
  bool exact = true;
  std::vector<APFloat> converted;
  if (!element.isF32()) {
    converted.reserve(values.size());
    for (float v : values) {
      APFloat a(v);
      bool losesInfo = false;
      a.convert(element.getFloatSemantics(), APFloat::rmNearestTiesToEven, &losesInfo);
      exact = exact && !losesInfo;
      converted.push_back(a);
    }
  }
  if (!element.isF32() && exact) {
    auto type = RankedTensorType::get(shape, element);
    global.setTypeAttr(TypeAttr::get(type));
    global.setValueAttr(DenseElementsAttr::get(type, converted));
  } else {
    auto type = RankedTensorType::get(shape, Float32Type::get(global.getContext()));
    global.setTypeAttr(TypeAttr::get(type));
    global.setValueAttr(DenseElementsAttr::get(type, values));
  }
  // kiln.weight ops take the global's (possibly new) type.
  auto newType = cast<RankedTensorType>(global.getType());
  if (auto module = global->getParentOfType<ModuleOp>())
    module.walk([&](WeightOp w) {
      if (w.getGlobal() == global.getSymName())
        w.getResult().setType(newType);
    });
}

void setPrunedValues(GlobalOp global, StringRef pattern, int64_t axis, ArrayRef<float> values) {
  setInlineValues(global, cast<RankedTensorType>(global.getType()).getShape(), values);
  Builder b(global.getContext());
  size_t zeros = size_t(std::count(values.begin(), values.end(), 0.0f));
  global.setSparsityAttr(b.getDictionaryAttr({
      b.getNamedAttr("axis", b.getI64IntegerAttr(axis)),
      b.getNamedAttr("pattern", b.getStringAttr(pattern)),
      b.getNamedAttr("sparsity", b.getF64FloatAttr(double(zeros) / double(values.size()))),
  }));
}

} // namespace kiln
