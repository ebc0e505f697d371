//===- Backend.h - the target backend interface and plugin loading --------===//
//
// Modelled on IREE's TargetBackend: a backend has a name and options, adds
// the passes its lowering needs, and emits an artifact. Every backend is a
// plugin: a shared library exporting
//
//   extern "C" kiln::BackendPluginInfo kilnGetBackendPluginInfo();
//
// whose abiVersion must equal kBackendPluginABIVersion. Plugins are found by
// name in the plugin folder (lib/kiln/backends/libkiln-backend-NAME.so next
// to the kiln binary) or loaded from a path with --load-backend-plugin.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_BACKEND_BACKEND_H
#define KILN_BACKEND_BACKEND_H

#include "kiln/Backend/Artifact.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/PassManager.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace kiln {

inline constexpr uint32_t kBackendPluginABIVersion = 1;

struct BackendOption {
  std::string name, help, defaultValue;
};

/// Option values given on the command line (--NAME=VALUE for the backend's options).
using BackendOptions = std::map<std::string, std::string>;

class TargetBackend {
public:
  virtual ~TargetBackend() = default;
  virtual std::string name() const = 0;
  virtual std::string description() const = 0;
  virtual std::vector<BackendOption> options() const = 0;
  /// Passes run on the kiln module before emit (after the user's pipeline).
  virtual void buildLoweringPipeline(mlir::OpPassManager &pm, const BackendOptions &options) = 0;
  /// `emit` is "artifact" (write `writer`'s directory) or an intermediate
  /// stage ("lowered", "llvm", "obj") printed to `stageOut` instead.
  virtual void emit(mlir::ModuleOp module, ArtifactWriter &writer, const BackendOptions &options,
                    const std::string &stage, std::string &stageOut) = 0;
};

struct BackendPluginInfo {
  uint32_t abiVersion;
  const char *name;
  TargetBackend *(*create)();
};

/// Loads a backend plugin from a path; throws kiln::Error on a missing file,
/// a missing entry point or a wrong ABI version.
std::unique_ptr<TargetBackend> loadBackendPlugin(const std::string &path);
/// The plugin folder (lib/kiln/backends relative to the running binary).
std::string backendPluginDir();
/// Loads the backend called `name` from the plugin folder.
std::unique_ptr<TargetBackend> loadBackendByName(const std::string &name);
/// Paths of every plugin in the plugin folder.
std::vector<std::string> listBackendPlugins();

} // namespace kiln

extern "C" kiln::BackendPluginInfo kilnGetBackendPluginInfo();

#endif
