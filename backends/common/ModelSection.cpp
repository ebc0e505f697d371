//===- ModelSection.cpp - the manifest's model section, for every backend -===//
#include "kiln/Backend/ModelSection.h"

#include "kiln/IR/KilnDialect.h"
#include "kiln/IR/KilnOps.h"
#include "kiln/Support/Error.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

#include <sstream>

using namespace mlir;

namespace kiln {

std::string kvCacheFormat(ModuleOp module, const std::string &who) {
  std::string kv = "f32";
  module.walk([&](CacheUpdateOp c) {
    std::string f = stringifyCacheFormat(c.getFormat()).str();
    if (kv != "f32" && f != kv)
      throw Error(who + ": KV cache updates of different formats");
    kv = f;
  });
  return kv;
}

std::vector<int64_t> cacheHeads(ModuleOp module, const std::string &who) {
  auto decode = module.lookupSymbol<func::FuncOp>("decode");
  if (!decode)
    throw Error(who + ": module has no decode function");
  std::vector<int64_t> heads;
  for (unsigned i = 2; i + 1 < decode.getNumArguments(); i += 2) {
    int64_t k = cast<RankedTensorType>(decode.getArgumentTypes()[i]).getShape()[1];
    int64_t v = cast<RankedTensorType>(decode.getArgumentTypes()[i + 1]).getShape()[1];
    if (k != v)
      throw Error(who + ": layer " + std::to_string((i - 2) / 2) + "'s key and value caches have different head counts");
    heads.push_back(k);
  }
  return heads;
}

std::string modelSectionYaml(ModuleOp module, const std::string &who) {
  auto config = module->getAttrOfType<DictionaryAttr>(kConfigAttr);
  if (!config)
    throw Error(who + ": module has no kiln.config attribute");
  std::ostringstream os;
  os << "{";
  bool first = true;
  for (NamedAttribute a : config) {
    os << (first ? "" : ", ") << a.getName().str() << ": ";
    first = false;
    if (auto i = dyn_cast<IntegerAttr>(a.getValue()))
      os << (i.getType().isInteger(1) ? (i.getValue().getBoolValue() ? "true" : "false") : std::to_string(i.getInt()));
    else if (auto f = dyn_cast<FloatAttr>(a.getValue()))
      os << std::to_string(f.getValueAsDouble());
    else if (auto b = dyn_cast<BoolAttr>(a.getValue()))
      os << (b.getValue() ? "true" : "false");
    else if (auto s = dyn_cast<StringAttr>(a.getValue()))
      os << s.str();
  }
  // The KV caches' storage: the runtime sizes them by it.
  os << ", kv_cache: " << kvCacheFormat(module, who);
  os << ", cache_heads: [";
  std::vector<int64_t> heads = cacheHeads(module, who);
  for (size_t i = 0; i < heads.size(); ++i)
    os << (i ? ", " : "") << heads[i];
  os << "]}";
  return os.str();
}

} // namespace kiln
