//===- Pipeline.h - YAML pipelines and pass lists -------------------------===//
//
// A pipeline file lists passes in order, each a name or a name with options:
//
//   # pipelines/f32.yaml
//   description: Lossless fusion.
//   passes:
//     - kiln-fuse-attention
//     - name: kiln-fuse-linear-gelu
//       options: {approximation: tanh}
//     - canonicalize
//
// Any pass registered with MLIR works: kiln's, MLIR's generic ones, and
// those of plugins loaded with --load-pass-plugin. Function passes are
// nested under func.func automatically. Errors name file, line and column.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_PASSES_PIPELINE_H
#define KILN_PASSES_PIPELINE_H

#include "mlir/Pass/PassManager.h"

#include <string>

namespace kiln {

struct Pipeline {
  std::string text;   ///< MLIR's textual form, without the builtin.module() wrapper.
  std::string source; ///< What it was parsed from (the YAML or the --passes list).
  std::string target; ///< The YAML's optional `target:`, empty if none.
};

/// Parses a YAML pipeline; throws kiln::Error("FILE:LINE:COL: problem").
Pipeline parsePipelineYaml(const std::string &yaml, const std::string &file);
/// Parses "a,b{opt=1 other=2},c"; throws kiln::Error naming the bad entry.
Pipeline parsePassList(const std::string &list);
/// Appends `pipeline` to a module-anchored pass manager.
void addPipeline(mlir::OpPassManager &pm, const Pipeline &pipeline);

} // namespace kiln

#endif
