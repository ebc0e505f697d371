//===- ModelSection.h - the manifest's model section, for every backend ---===//
#ifndef KILN_BACKEND_MODELSECTION_H
#define KILN_BACKEND_MODELSECTION_H

#include "mlir/IR/BuiltinOps.h"

#include <cstdint>
#include <string>
#include <vector>

namespace kiln {

/// The module's KV-cache storage format ("f32" or "int8"); throws
/// kiln::Error (prefixed with `who`) when cache updates disagree.
std::string kvCacheFormat(mlir::ModuleOp module, const std::string &who);

/// The heads each layer's key and value caches hold (the decode function's
/// [B, H, C, D] cache arguments 2 + 2l and 3 + 2l; kiln-prune-heads makes
/// them differ from n_head).
std::vector<int64_t> cacheHeads(mlir::ModuleOp module, const std::string &who);

/// The manifest's `model` section as flow YAML: the module's kiln.config,
/// its kv_cache format and cache_heads.
std::string modelSectionYaml(mlir::ModuleOp module, const std::string &who);

} // namespace kiln

#endif
