//===- Calibration.cpp - running a module over calibration text ------------===//
#include "kiln/Passes/Calibration.h"

#include "kiln/IR/KilnDialect.h"
#include "kiln/Runtime/Tokenizer.h"
#include "kiln/Support/Error.h"
#include "kiln/Support/File.h"

#include <algorithm>

using namespace mlir;

namespace kiln {

std::string calibrationPath(ModuleOp module, const std::string &option) {
  if (!option.empty())
    return option;
  if (auto attr = module->getAttrOfType<StringAttr>("kiln.calibration"))
    return attr.str();
  throw Error("needs calibration text: give kiln compile --calibration FILE (or the pass option calibration=FILE)");
}

int64_t runCalibration(ModuleOp module, const std::string &path, int64_t maxTokens,
                       const Interpreter::Observer &observer) {
  auto dir = module->getAttrOfType<StringAttr>(kCheckpointAttr);
  if (!dir)
    throw Error("the module names no checkpoint folder (kiln.checkpoint) to take the tokenizer from");
  auto tokenizer = Tokenizer::fromDir(dir.str());
  std::vector<int32_t> ids = tokenizer->encode(readFile(path, "cannot open calibration text"));
  if (maxTokens > 0 && int64_t(ids.size()) > maxTokens)
    ids.resize(size_t(maxTokens));
  ReferenceModel model(module);
  int64_t chunk = model.promptLen(), window = model.contextLen() / chunk * chunk;
  ids.resize(ids.size() / size_t(chunk) * size_t(chunk));
  if (ids.empty() || window == 0)
    throw Error(path + ": calibration needs at least one full prefill chunk of " + std::to_string(chunk) + " tokens");
  model.interpreter().setObserver(observer);
  model.interpreter().setLogitsSkipped(true); // the logits are not observed
  for (size_t start = 0; start < ids.size(); start += size_t(window)) {
    model.reset();
    size_t end = std::min(ids.size(), start + size_t(window));
    model.prefill(std::vector<int32_t>(ids.begin() + long(start), ids.begin() + long(end)));
  }
  model.interpreter().setObserver({});
  model.interpreter().setLogitsSkipped(false);
  return int64_t(ids.size());
}

} // namespace kiln
