//===- SidecarFiles.cpp - the files qaic-compile reads beside model.onnx --===//
#include "SidecarFiles.h"

#include <nlohmann/json.hpp>

#include <sstream>

namespace kiln::onnxb {

std::string kvPrecision(const GraphInterface &iface) {
  if (iface.kvInt8)
    return "mxint8";
  return iface.weightType == "bf16" ? "bfloat16" : "float16";
}

std::string specializationsJson(const GraphInterface &iface, const SidecarOptions &options) {
  auto symbols = [&](int64_t seq) {
    return nlohmann::json{{"batch_size", std::to_string(options.batch)},
                          {"seq_len", std::to_string(seq)},
                          {"ctx_len", std::to_string(iface.ctxLen)}};
  };
  std::vector<std::pair<std::string, int64_t>> specs = {{"Prefill", iface.promptLen}};
  if (iface.promptLen != 1)
    specs.push_back({"Decode", 1});
  nlohmann::json list = nlohmann::json::array();
  for (const auto &[name, seq] : specs)
    list.push_back(options.namedSpecializations ? nlohmann::json{{"name", name}, {"symbols", symbols(seq)}}
                                                : symbols(seq));
  return nlohmann::json{{"specializations", list}}.dump(4) + "\n";
}

std::string customIoYaml(const GraphInterface &iface) {
  std::ostringstream os;
  std::string precision = kvPrecision(iface);
  for (size_t layer = 0; layer < iface.cacheHeads.size(); ++layer)
    for (const char *kv : {"key", "value"})
      for (const char *suffix : {"", "_RetainedState"})
        os << " - IOName: past_" << kv << "." << layer << suffix << "\n   Precision: " << precision << "\n\n";
  // Adapter weights travel in the weights' 16-bit type, as QEfficient marks them.
  for (const auto &name : iface.adapterInputs)
    for (const char *suffix : {"", "_RetainedState"})
      os << " - IOName: " << name << suffix << "\n   Precision: " << (iface.weightType == "bf16" ? "bfloat16" : "float16")
         << "\n\n";
  return os.str();
}

std::string qaicCompileArgs(const GraphInterface &iface, const SidecarOptions &options) {
  std::ostringstream os;
  os << "/opt/qti-aic/exec/qaic-compile -aic-hw -aic-hw-version=" << options.hwVersion << " -m=model.onnx"
     << " -retained-state";
  // bf16 models keep bf16 on the device; everything else computes in fp16.
  if (kvPrecision(iface) != "bfloat16")
    os << " -convert-to-fp16";
  if (options.mxfp6)
    os << " -mxfp6-matmul";
  os << " -aic-num-cores=" << options.numCores << " -network-specialization-config=specializations.json"
     << " -custom-IO-list-file=custom_io.yaml -aic-binary-dir=qpc";
  return os.str();
}

} // namespace kiln::onnxb
