//===- CompileCommand.cpp - kiln compile ----------------------------------===//
#include "../Args.h"
#include "Commands.h"

#include "kiln/Backend/Backend.h"
#include "kiln/Backend/Timing.h"
#include "kiln/Passes/Passes.h"
#include "kiln/Passes/Partitioner.h"
#include "kiln/Passes/Pipeline.h"
#include "kiln/Passes/Statistics.h"
#include "kiln/Support/Checksum.h"
#include "kiln/Support/Error.h"
#include "kiln/Support/File.h"

#include "mlir/IR/Verifier.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Tools/Plugins/PassPlugin.h"
#include "mlir/Transforms/Passes.h"
#include "llvm/Support/raw_ostream.h"

#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace fs = std::filesystem;

namespace kiln {

namespace {
const char *kCompileHelp =
    "usage: kiln compile MODEL_DIR|FILE.mlir -o OUT [--target cpu|onnx|vulkan|cuda] [--prompt-len N] [--ctx-len N]\n"
    "                    [--emit kiln|lowered|llvm|obj|ptx|artifact] [--load-backend-plugin PATH]\n"
    "                    [--pipeline FILE.yaml | --passes LIST] [--load-pass-plugin PATH]\n"
    "                    [--calibration TEXT_FILE] [--adapter PEFT_DIR] [--adapters NAME=PEFT_DIR,...]\n"
    "                    [--print-ir-after-all] [--print-ir-after PASS] [--timing] [--pass-statistics]\n"
    "                    [--dump-graph FILE.dot] [--decode-batch 1,2,4,8]\n"
    "                    [--<backend option>=VALUE ...]\n"
    "       kiln compile --list-targets [--load-backend-plugin PATH]\n"
    "Compiles a model ahead of time into an artifact directory (default) or one intermediate stage.\n";

/// The passes `kiln compile` runs without --pipeline or --passes (pipelines/f32.yaml).
const char *kDefaultPasses = "kiln-fuse-linear-gelu,kiln-fuse-residual-layer-norm,canonicalize,cse";

/// --decode-batch 1,2,4,8: one decode specialization per size (kiln-batch-decode, after every other pass).
void addDecodeBatches(const Args &args, const std::string &target, mlir::OpPassManager &pm) {
  std::string list = args.get("--decode-batch"), sizes;
  std::set<int64_t> seen;
  std::stringstream ss(list);
  for (std::string item; std::getline(ss, item, ',');) {
    char *end = nullptr;
    long long b = std::strtoll(item.c_str(), &end, 10);
    if (item.empty() || *end || b < 1 || b > kMaxDecodeBatch)
      args.error("--decode-batch takes sizes in 1.." + std::to_string(kMaxDecodeBatch) + " separated by commas, got '" +
                 list + "'");
    if (b > 1 && seen.insert(b).second)
      sizes += (sizes.empty() ? "" : ",") + std::to_string(b);
  }
  if (sizes.empty())
    return;
  if (target != "cpu")
    args.error("--decode-batch: the " + target + " target decodes one sequence per step; batched decode is cpu only");
  std::string error;
  llvm::raw_string_ostream os(error);
  if (failed(mlir::parsePassPipeline("kiln-batch-decode{sizes=" + sizes + "}", pm, os)))
    throw Error("--decode-batch: " + error);
}

std::string pipelineText(mlir::OpPassManager &pm) {
  std::string text;
  llvm::raw_string_ostream os(text);
  pm.printAsTextualPipeline(os);
  return os.str();
}
} // namespace

int compileCommand(int argc, char **argv) {
  // Backend options are only known once the backend is loaded: collect
  // --name=value pairs the driver does not know and hand them over.
  std::set<std::string> valued = {"-o",         "--target",         "--prompt-len",       "--ctx-len",
                                  "--emit",     "--load-backend-plugin", "--pipeline",    "--passes",
                                  "--load-pass-plugin", "--print-ir-after", "--calibration", "--dump-graph",
                                  "--adapter",  "--adapters", "--decode-batch"};
  std::set<std::string> flags = {"--list-targets", "--help", "--print-ir-after-all", "--timing", "--pass-statistics"};
  std::vector<char *> driverArgs = {argv[0], argv[1]};
  BackendOptions backendOptions;
  std::vector<std::string> backendOptionOrder;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    std::string name = a.substr(0, a.find('='));
    if (a.rfind("--", 0) == 0 && !valued.count(name) && !flags.count(name)) {
      if (a.find('=') == std::string::npos) {
        if (i + 1 >= argc)
          throw Error("kiln compile: option '" + a + "' needs a value");
        backendOptions[a.substr(2)] = argv[++i];
      } else {
        backendOptions[name.substr(2)] = a.substr(a.find('=') + 1);
      }
      backendOptionOrder.push_back(name);
      continue;
    }
    driverArgs.push_back(argv[i]);
  }
  Args args("compile", valued, flags);
  args.parse(int(driverArgs.size()), driverArgs.data(), 2);
  if (args.has("--help")) {
    std::cout << kCompileHelp;
    return 0;
  }

  std::unique_ptr<TargetBackend> backend;
  if (args.has("--load-backend-plugin"))
    backend = loadBackendPlugin(args.get("--load-backend-plugin"));
  if (args.has("--list-targets")) {
    std::vector<std::unique_ptr<TargetBackend>> all;
    if (backend)
      all.push_back(std::move(backend));
    for (const auto &path : listBackendPlugins())
      all.push_back(loadBackendPlugin(path));
    for (const auto &b : all) {
      std::cout << b->name() << ": " << b->description() << "\n";
      for (const auto &o : b->options())
        std::cout << "  --" << o.name << "=... " << o.help << " (default: " << o.defaultValue << ")\n";
    }
    return 0;
  }
  std::string target = args.get("--target", "cpu");
  if (!backend)
    backend = loadBackendByName(target);
  else if (backend->name() != target && args.has("--target"))
    args.error("--target " + target + " does not match the loaded plugin's target '" + backend->name() + "'");
  std::set<std::string> known;
  for (const auto &o : backend->options())
    known.insert(o.name);
  for (const auto &name : backendOptionOrder)
    if (!known.count(name.substr(2)))
      args.error("unknown option '" + name + "' (not a driver option nor one of the " + backend->name() +
                 " backend's; see kiln compile --list-targets)");

  std::string stage = args.get("--emit", "artifact");
  if (stage != "kiln" && stage != "lowered" && stage != "llvm" && stage != "obj" && stage != "ptx" && stage != "artifact")
    args.error("--emit must be kiln, lowered, llvm, obj, ptx or artifact, got '" + stage + "'");
  if (!args.has("-o"))
    args.error("missing -o OUT");
  std::string out = args.get("-o");

  // --timing: every phase, the pass pipeline pass by pass and the backend's own phases.
  mlir::DefaultTimingManager timing;
  timing.setEnabled(args.has("--timing"));
  mlir::TimingScope root = timing.getRootScope();
  mlir::TimingScope phase = root.nest("import");
  ImportOptions options;
  options.promptLen = args.getInt("--prompt-len", 0);
  options.ctxLen = args.getInt("--ctx-len", 0);
  setAdapterOptions(args, options, true);
  LoadedModel model = loadModel(args.onePositional("MODEL_DIR"), options);
  mlir::ModuleOp module = *model.module;

  // The user's pipeline (a file, a list, or the default: pipelines/f32.yaml's
  // passes), then the backend's lowering passes.
  phase = root.nest("calibration");
  setCalibration(args, module);
  if (args.has("--dump-graph")) {
    // The imported graph, with the groups the fusion partitioner forms as clusters.
    std::ofstream dot(args.get("--dump-graph"), std::ios::trunc);
    if (!dot)
      fail(args.get("--dump-graph"), "cannot open for writing");
    writeDataflowGraph(module, dot);
  }
  Pipeline user = userPipeline(args, kDefaultPasses);
  mlir::PassManager pm = mlir::PassManager::on<mlir::ModuleOp>(model.context.get());
  addPipeline(pm, user);
  backend->buildLoweringPipeline(pm, backendOptions);
  if (args.has("--decode-batch"))
    addDecodeBatches(args, backend->name(), pm);
  std::string pipeline = pipelineText(pm);
  if (args.has("--print-ir-after-all") || args.has("--print-ir-after")) {
    std::string only = args.get("--print-ir-after");
    model.context->disableMultithreading();
    pm.enableIRPrinting([](mlir::Pass *, mlir::Operation *) { return false; },
                        [only](mlir::Pass *pass, mlir::Operation *) { return only.empty() || pass->getArgument() == only; },
                        /*printModuleScope=*/true, /*printAfterOnlyOnChange=*/false);
  }
  phase = root.nest("pass pipeline");
  if (args.has("--timing"))
    pm.enableTiming(phase);
  if (failed(pm.run(module)) || failed(mlir::verify(module)))
    throw Error("kiln compile: the pass pipeline failed");
  phase = root.nest("backend: " + backend->name());
  if (args.has("--pass-statistics"))
    std::cerr << "pass statistics:\n" << statisticsReport();

  std::string stageOut;
  if (stage == "kiln") {
    llvm::raw_string_ostream os(stageOut);
    module.print(os);
  } else {
    ArtifactWriter writer(out);
    std::ostringstream yaml;
    yaml << "{text: '" << pipeline << "', hash: " << checksumHex(checksum64(pipeline.data(), pipeline.size()))
         << ", source: " << nlohmann::json(user.source).dump() << "}";
    writer.setSection("pipeline", yaml.str());
    if (!model.checkpointDir.empty())
      for (const char *f : {"vocab.json", "merges.txt"})
        if (fs::exists(fs::path(model.checkpointDir) / f))
          writer.copyFile(f, (fs::path(model.checkpointDir) / f).string());
    setCompileTiming(phase.nest("emit"));
    backend->emit(module, writer, backendOptions, stage, stageOut);
    setCompileTiming(mlir::TimingScope());
    if (stage == "artifact") {
      phase = root.nest("write the artifact");
      writer.finish();
      std::cerr << "wrote " << out << "\n";
      return 0;
    }
  }
  if (out == "-") { // a stage to stdout
    std::cout << stageOut << std::flush;
    return 0;
  }
  std::error_code ec;
  if (fs::exists(out, ec) && !fs::is_regular_file(out, ec))
    writeFile(out, stageOut); // /dev/null, a pipe: written in place
  else
    writeFileAtomically(out, stageOut); // never a truncated .mlir where a good one was
  return 0;
}

} // namespace kiln
