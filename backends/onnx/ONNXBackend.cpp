//===- ONNXBackend.cpp - the onnx backend plugin --------------------------===//
//
// kiln IR -> one ONNX graph with QEfficient's KV-retained-state interface
// (Lowering.cpp), checked with onnx::checker and strict shape inference,
// plus the files Qualcomm's qaic-compile reads: specializations.json,
// custom_io.yaml and the command line itself (qaic-compile.args). ONNX
// Runtime runs the same model.onnx (backends/onnx/runner/kiln-ort.js).
//
//===----------------------------------------------------------------------===//
#include "GraphBuilder.h"
#include "Lowering.h"
#include "SidecarFiles.h"

#include "kiln/Backend/Backend.h"
#include "kiln/Backend/ModelSection.h"
#include "kiln/Frontend/SafeTensors.h"
#include "kiln/IR/Adapters.h"
#include "kiln/Support/Error.h"

#include <cstring>

#include <sstream>

using namespace mlir;

namespace kiln::onnxb {
namespace {

class ONNXBackend : public TargetBackend {
public:
  std::string name() const override { return "onnx"; }
  std::string description() const override {
    return "an ONNX graph with the KV cache as retained state, specializations.json and custom_io.yaml for "
           "NPU compilers (Qualcomm Cloud AI 100's qaic-compile); runs in ONNX Runtime";
  }
  std::vector<BackendOption> options() const override {
    return {{"onnx-specializations", "specializations.json form: named ({name, symbols}) or list (older SDKs)", "named"},
            {"onnx-batch-size", "batch_size of the specializations (the graph's batch axis is symbolic)", "1"},
            {"onnx-hw-version", "qaic-compile -aic-hw-version: ai100 or ai200", "ai100"},
            {"onnx-num-cores", "qaic-compile -aic-num-cores (1-16)", "16"},
            {"onnx-mxfp6-matmul", "qaic-compile -mxfp6-matmul (MatMul weights in MXFP6): true or false", "false"}};
  }

  void buildLoweringPipeline(OpPassManager &, const BackendOptions &) override {}

  void emit(ModuleOp module, ArtifactWriter &writer, const BackendOptions &options, const std::string &stage,
            std::string &stageOut) override {
    SidecarOptions so = parseOptions(options);
    if (stage != "lowered" && stage != "artifact")
      throw Error("onnx backend: --emit " + stage + " is another backend's stage; the onnx backend emits lowered (the "
                  "graph as text) or artifact");
    GraphBuilder builder(writer);
    GraphInterface iface = lowerToONNX(module, builder);
    onnx::ModelProto &model = builder.model();
    model.add_functions()->CopyFrom(ctxScatterFunction());
    model.add_functions()->CopyFrom(ctxGatherFunction());
    auto *meta = model.add_metadata_props();
    meta->set_key("kiln_interface");
    meta->set_value("qefficient-kv-retained-state");
    if (stage == "lowered") {
      checkModel(model, "");
      stageOut = dumpModel(model);
      return;
    }
    std::string bytes;
    if (!model.SerializeToString(&bytes))
      throw Error("onnx backend: the model does not serialize (over protobuf's 2 GB limit?)");
    writer.addFile("model.onnx", std::move(bytes));
    // The checker reads the written file: it resolves the weights.bin references too.
    writer.addCheck([model](const std::string &dir) { checkModel(model, dir + "/model.onnx"); });
    so.batch = so.batch ? so.batch : iface.batch;
    writer.addFile("specializations.json", specializationsJson(iface, so));
    writer.addFile("custom_io.yaml", customIoYaml(iface));
    writer.addFile("qaic-compile.args", qaicCompileArgs(iface, so) + "\n");
    writer.addSpecialization({"prefill", "model.onnx", iface.promptLen, 0});
    writer.addSpecialization({"decode", "model.onnx", 1, 0});
    std::ostringstream target;
    target << "{name: onnx, opset: " << kOpset << ", graph: model.onnx, io_precision: " << kvPrecision(iface)
           << ", specializations: specializations.json, custom_io: custom_io.yaml, compile_command: qaic-compile.args}";
    writer.setSection("target", target.str());
    writer.setSection("model", modelSectionYaml(module, "onnx backend"));
    if (!iface.adapterInputs.empty())
      writeAdapters(module, iface, writer);
  }

private:
  /// adapters.safetensors: "<adapter>/<slot>" for every adapter and graph
  /// input (the values the runner feeds; none is zeros).
  static void writeAdapters(ModuleOp module, const GraphInterface &iface, ArtifactWriter &writer) {
    SafeTensorsWriter file;
    std::string names;
    for (const auto &adapter : adapterNames(module)) {
      names += (names.empty() ? "" : ", ") + adapter;
      for (const auto &input : iface.adapterInputs) {
        auto slot = module.lookupSymbol<GlobalOp>(input);
        std::vector<float> v = adapterSlotValues(module, slot, adapter);
        auto shape = cast<RankedTensorType>(slot.getType()).getShape();
        std::vector<uint8_t> bytes(v.size() * sizeof(float));
        std::memcpy(bytes.data(), v.data(), bytes.size());
        file.add(adapter + "/" + input, DType::F32, {shape[0], shape[1]}, std::move(bytes));
      }
    }
    writer.addFile("adapters.safetensors", file.bytes());
    writer.setSection("adapters", "{file: adapters.safetensors, names: [" + names + "]}");
  }

  static SidecarOptions parseOptions(const BackendOptions &options) {
    SidecarOptions so;
    for (const auto &option : options) {
      const std::string &key = option.first, &value = option.second;
      auto bad = [&](const std::string &want) {
        throw Error("onnx backend: --" + key + "=" + value + ": " + want);
      };
      if (key == "onnx-specializations") {
        if (value != "named" && value != "list")
          bad("must be named or list");
        so.namedSpecializations = value == "named";
      } else if (key == "onnx-hw-version") {
        if (value != "ai100" && value != "ai200")
          bad("must be ai100 or ai200");
        so.hwVersion = value;
      } else if (key == "onnx-num-cores" || key == "onnx-batch-size") {
        int64_t n = 0;
        size_t used = 0;
        try {
          n = std::stoll(value, &used);
        } catch (...) {
          used = 0;
        }
        int64_t most = key == "onnx-num-cores" ? 16 : 1 << 20;
        if (used != value.size() || value.empty() || n < 1 || n > most)
          bad("must be an integer from 1 to " + std::to_string(most));
        (key == "onnx-num-cores" ? so.numCores : so.batch) = n;
      } else if (key == "onnx-mxfp6-matmul") {
        if (value != "true" && value != "false")
          bad("must be true or false");
        so.mxfp6 = value == "true";
      } else {
        throw Error("onnx backend: unknown option '--" + key + "'");
      }
    }
    return so;
  }
};

} // namespace
} // namespace kiln::onnxb

extern "C" kiln::BackendPluginInfo kilnGetBackendPluginInfo() {
  return {kiln::kBackendPluginABIVersion, "onnx", []() -> kiln::TargetBackend * { return new kiln::onnxb::ONNXBackend(); }};
}
