//===- Commands.h - kiln driver subcommands -------------------------------===//
#ifndef KILN_TOOLS_COMMANDS_H
#define KILN_TOOLS_COMMANDS_H

#include "../Args.h"
#include "kiln/Frontend/Importer.h"
#include "kiln/Passes/Pipeline.h"

#include "mlir/IR/MLIRContext.h"

#include <memory>
#include <string>

namespace kiln {

int importCommand(int argc, char **argv);
int compileCommand(int argc, char **argv);
int referenceRunCommand(int argc, char **argv);
int evalCommand(int argc, char **argv);
int pipelinesCommand(int argc, char **argv);

/// A kiln module from a Hugging Face folder (imported with `options`) or from
/// a .mlir file (parsed and verified; `options` then do not apply).
struct LoadedModel {
  std::unique_ptr<mlir::MLIRContext> context;
  mlir::OwningOpRef<mlir::ModuleOp> module;
  std::string checkpointDir; ///< Where the weights and tokenizer files are.
};
LoadedModel loadModel(const std::string &path, const ImportOptions &options);

/// --adapter DIR (merged) and, where `switchable`, --adapters NAME=DIR,...
void setAdapterOptions(const Args &args, ImportOptions &options, bool switchable);

/// A --pipeline value: a YAML file, or the name of a shipped pipeline ("int8": pipelines/int8.yaml,
/// looked up in $KILN_PIPELINES_DIR, the install's share/kiln/pipelines, the source tree).
/// An unknown name is an error listing the shipped ones.
std::string resolvePipelineFile(const std::string &value);
/// The shipped pipelines' names, sorted.
std::vector<std::string> shippedPipelines();

/// Loads --load-pass-plugin, registers every pass, and parses --pipeline
/// FILE.yaml|NAME or --passes LIST (`defaultPasses` when neither is given).
Pipeline userPipeline(const Args &args, const std::string &defaultPasses);
/// Runs --pipeline FILE.yaml or --passes LIST (after --load-pass-plugin) on
/// the module; nothing if neither is given.
/// --calibration FILE: the text calibrating passes read (module attribute kiln.calibration).
void setCalibration(const Args &args, mlir::ModuleOp module);
/// Runs a parsed pipeline on the module; throws "`what` failed" (nothing if empty).
void runPipeline(const Pipeline &pipeline, mlir::ModuleOp module, const std::string &what);
void applyUserPipeline(const Args &args, mlir::ModuleOp module);

/// Registers the dialects kiln modules use.
void registerKilnDialects(mlir::MLIRContext &context);

} // namespace kiln

#endif
