//===- SidecarFiles.h - the files qaic-compile reads beside model.onnx ----===//
//
// MLIR-free. Formats as QEfficient writes them (see docs/backends/onnx.md):
// specializations.json (indent 4, sorted keys, string values), custom_io.yaml
// (" - IOName: NAME\n   Precision: TYPE\n\n" per KV input and retained
// state) and the qaic-compile command line, run from the artifact folder.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_BACKENDS_ONNX_SIDECARFILES_H
#define KILN_BACKENDS_ONNX_SIDECARFILES_H

#include "GraphInterface.h"

#include <cstdint>

#include <string>

namespace kiln::onnxb {

struct SidecarOptions {
  bool namedSpecializations = true;
  int64_t batch = 0; ///< 0: the model's
  std::string hwVersion = "ai100";
  int64_t numCores = 16;
  bool mxfp6 = false;
};

/// float16 (f32 and f16 models), bfloat16 (bf16 models) or mxint8 (an int8
/// KV cache): the precision the device keeps the KV cache in.
std::string kvPrecision(const GraphInterface &iface);

/// Prefill (seq_len = prompt_len) and Decode (seq_len 1; omitted when
/// prompt_len is 1, as QEfficient does), both at ctx_len.
std::string specializationsJson(const GraphInterface &iface, const SidecarOptions &options);
std::string customIoYaml(const GraphInterface &iface);
std::string qaicCompileArgs(const GraphInterface &iface, const SidecarOptions &options);

} // namespace kiln::onnxb

#endif
