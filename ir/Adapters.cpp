//===- Adapters.cpp - switchable LoRA adapters in a kiln module -----------===//
#include "kiln/IR/Adapters.h"

#include "kiln/Support/Error.h"

#include <algorithm>

namespace kiln {

using namespace mlir;

namespace {
ArrayAttr adaptersOf(ModuleOp module) { return module->getAttrOfType<ArrayAttr>(kAdaptersAttr); }
} // namespace

std::vector<std::string> adapterNames(ModuleOp module) {
  std::vector<std::string> names;
  if (ArrayAttr list = adaptersOf(module))
    for (Attribute a : list)
      if (auto d = dyn_cast<DictionaryAttr>(a))
        if (auto n = d.getAs<StringAttr>("name"))
          names.push_back(n.str());
  return names;
}

std::vector<GlobalOp> adapterSlots(ModuleOp module) {
  std::vector<GlobalOp> slots;
  for (GlobalOp g : module.getOps<GlobalOp>())
    if (g.getAdapter())
      slots.push_back(g);
  return slots;
}

void checkAdapterName(ModuleOp module, const std::string &name) {
  std::vector<std::string> names = adapterNames(module);
  if (name == "none" || std::find(names.begin(), names.end(), name) != names.end())
    return;
  std::string known;
  for (const auto &n : names)
    known += n + ", ";
  throw Error("no adapter named '" + name + "' (this model has: " + known + "none)");
}

std::vector<float> adapterSlotValues(ModuleOp module, GlobalOp slot, const std::string &name) {
  checkAdapterName(module, name);
  auto type = cast<RankedTensorType>(slot.getType());
  std::vector<float> values(size_t(type.getNumElements()), 0.0f);
  if (name == "none")
    return values;
  if (ArrayAttr list = adaptersOf(module))
    for (Attribute a : list) {
      auto d = dyn_cast<DictionaryAttr>(a);
      auto n = d ? d.getAs<StringAttr>("name") : StringAttr();
      if (!n || n.getValue() != name)
        continue;
      auto table = d.getAs<DictionaryAttr>("values");
      auto dense = table ? table.getAs<DenseFPElementsAttr>(slot.getSymName()) : DenseFPElementsAttr();
      if (!dense)
        return values;
      if (dense.getType() != type)
        throw Error("adapter '" + name + "': values of @" + slot.getSymName().str() + " do not match the slot's type");
      size_t i = 0;
      for (APFloat v : dense.getValues<APFloat>())
        values[i++] = v.convertToFloat();
      return values;
    }
  return values;
}

void refuseSwitchableAdapters(ModuleOp module, const std::string &who) {
  if (adaptersOf(module))
    throw Error((who.empty() ? "" : who + ": ") + "switchable adapters (--adapters) are not supported here yet; merge one with --adapter DIR");
}

} // namespace kiln
