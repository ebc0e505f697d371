//===- LoadModel.cpp - model folder or .mlir file -> kiln module ----------===//
#include "Commands.h"

#include "kiln/IR/KilnOps.h"
#include "kiln/Passes/Passes.h"
#include "kiln/Passes/Pipeline.h"
#include "kiln/Support/Error.h"
#include "kiln/Support/File.h"

#include "mlir/Pass/PassManager.h"
#include "mlir/Tools/Plugins/PassPlugin.h"
#include "mlir/Transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>

namespace kiln {

void registerKilnDialects(mlir::MLIRContext &context) {
  context.loadDialect<KilnDialect, mlir::func::FuncDialect>();
}

namespace {
std::vector<std::filesystem::path> pipelineDirs() {
  namespace fs = std::filesystem;
  std::vector<fs::path> dirs;
  if (const char *env = std::getenv("KILN_PIPELINES_DIR"))
    dirs.emplace_back(env);
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec)
    dirs.push_back(exe.parent_path().parent_path() / "share" / "kiln" / "pipelines");
  dirs.emplace_back(KILN_SOURCE_PIPELINES_DIR);
  return dirs;
}
} // namespace

std::vector<std::string> shippedPipelines() {
  namespace fs = std::filesystem;
  for (const auto &dir : pipelineDirs()) {
    std::vector<std::string> names;
    std::error_code ec;
    for (const auto &e : fs::directory_iterator(dir, ec))
      if (e.path().extension() == ".yaml")
        names.push_back(e.path().stem().string());
    if (!names.empty()) {
      std::sort(names.begin(), names.end());
      return names;
    }
  }
  return {};
}

std::string resolvePipelineFile(const std::string &value) {
  namespace fs = std::filesystem;
  if (fs::is_regular_file(value))
    return value;
  bool looksLikePath = value.find('/') != std::string::npos || fs::path(value).extension() == ".yaml";
  if (!looksLikePath && !value.empty())
    for (const auto &dir : pipelineDirs())
      if (fs::is_regular_file(dir / (value + ".yaml")))
        return (dir / (value + ".yaml")).string();
  std::string known;
  for (const auto &n : shippedPipelines())
    known += (known.empty() ? "" : ", ") + n;
  if (looksLikePath)
    fail(value, "cannot open pipeline file");
  throw Error("--pipeline '" + value + "': no such file and no shipped pipeline of that name (shipped: " +
              (known.empty() ? "none found" : known) + ")");
}

Pipeline userPipeline(const Args &args, const std::string &defaultPasses) {
  if (args.has("--load-pass-plugin")) {
    std::string path = args.get("--load-pass-plugin");
    auto plugin = mlir::PassPlugin::load(path);
    if (!plugin)
      fail(path, "cannot load pass plugin: " + llvm::toString(plugin.takeError()));
    plugin->registerPassRegistryCallbacks();
  }
  registerKilnPasses();
  mlir::registerTransformsPasses();
  if (args.has("--pipeline") && args.has("--passes"))
    args.error("give --pipeline or --passes, not both");
  if (args.has("--pipeline")) {
    std::string file = resolvePipelineFile(args.get("--pipeline"));
    return parsePipelineYaml(readFile(file, "cannot open pipeline file"), file);
  }
  return parsePassList(args.get("--passes", defaultPasses));
}

void setCalibration(const Args &args, mlir::ModuleOp module) {
  if (!args.has("--calibration"))
    return;
  std::string path = args.get("--calibration");
  if (!std::filesystem::is_regular_file(path))
    fail(path, "cannot open calibration text");
  module->setAttr("kiln.calibration", mlir::StringAttr::get(module.getContext(), path));
}

void setAdapterOptions(const Args &args, ImportOptions &options, bool switchable) {
  if (args.has("--adapter"))
    options.mergeAdapter = args.get("--adapter");
  if (!args.has("--adapters"))
    return;
  if (!switchable)
    args.error("--adapters applies to kiln compile (switchable adapters); merge one here with --adapter DIR");
  std::string list = args.get("--adapters");
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    std::string item = list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == item.size())
      args.error("--adapters: '" + item + "' is not NAME=PEFT_DIR");
    options.adapters.emplace_back(item.substr(0, eq), item.substr(eq + 1));
    if (comma == std::string::npos)
      break;
    start = comma + 1;
  }
}

void applyUserPipeline(const Args &args, mlir::ModuleOp module) {
  setCalibration(args, module);
  runPipeline(userPipeline(args, ""), module, "the pass pipeline");
}

void runPipeline(const Pipeline &pipeline, mlir::ModuleOp module, const std::string &what) {
  if (pipeline.text.empty())
    return;
  mlir::PassManager pm = mlir::PassManager::on<mlir::ModuleOp>(module.getContext());
  addPipeline(pm, pipeline);
  if (failed(pm.run(module)) || failed(mlir::verify(module)))
    throw Error(what + " failed");
}

LoadedModel loadModel(const std::string &path, const ImportOptions &options) {
  LoadedModel m;
  m.context = std::make_unique<mlir::MLIRContext>(mlir::MLIRContext::Threading::DISABLED);
  registerKilnDialects(*m.context);
  if (std::filesystem::is_directory(path)) {
    auto ckpt = Checkpoint::open(path);
    m.module = importGPT2(*m.context, *ckpt, options);
    m.checkpointDir = path;
    return m;
  }
  if (!std::filesystem::exists(path))
    fail(path, "no such model folder or .mlir file");
  if (!options.mergeAdapter.empty() || !options.adapters.empty())
    fail(path, "adapters are applied when importing a model folder, not to a .mlir file");
  // Collect diagnostics so a parse error becomes one kiln::Error.
  std::string diagnostics;
  llvm::raw_string_ostream os(diagnostics);
  mlir::ScopedDiagnosticHandler handler(m.context.get(), [&](mlir::Diagnostic &d) {
    os << d.getLocation() << ": " << d << "\n";
    return mlir::success();
  });
  llvm::SourceMgr sources;
  m.module = mlir::parseSourceFile<mlir::ModuleOp>(path, sources, m.context.get());
  if (!m.module || failed(mlir::verify(*m.module)))
    fail(path, "invalid kiln IR: " + os.str());
  auto dir = (*m.module)->getAttrOfType<mlir::StringAttr>(kCheckpointAttr);
  m.checkpointDir = dir ? dir.str() : "";
  return m;
}

} // namespace kiln
