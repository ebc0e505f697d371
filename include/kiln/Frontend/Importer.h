//===- Importer.h - Hugging Face GPT-2 -> kiln IR -------------------------===//
#ifndef KILN_FRONTEND_IMPORTER_H
#define KILN_FRONTEND_IMPORTER_H

#include "kiln/Frontend/Checkpoint.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

#include <string>
#include <utility>
#include <vector>

namespace kiln {

struct ImportOptions {
  int64_t batch = 1;
  /// Tokens per prefill call (prompts are prefilled in chunks of this size).
  /// 0: 128, clamped to the context length.
  int64_t promptLen = 0;
  /// KV-cache length. 0: the model's n_positions.
  int64_t ctxLen = 0;
  /// Prefill returns logits for every slot ([B, P, V]) instead of the last
  /// real token only ([B, 1, V]); used to score text.
  bool allLogits = false;
  /// A PEFT LoRA folder merged into the weights (W += scale (B A)^T) before
  /// any pass sees them (`--adapter DIR`).
  std::string mergeAdapter;
  /// Switchable LoRA adapters (`--adapters NAME=DIR,...`): each adapted
  /// linear gets its low-rank branch over adapter slots (kiln/IR/Adapters.h).
  std::vector<std::pair<std::string, std::string>> adapters;
};

/// Builds the kiln module: the weight table (kiln.global per tensor, backed
/// by the checkpoint folder) and the `prefill` and `decode` functions over a
/// retained KV cache. Throws kiln::Error on options the model cannot take.
mlir::OwningOpRef<mlir::ModuleOp> importGPT2(mlir::MLIRContext &context, const Checkpoint &checkpoint,
                                             const ImportOptions &options);

} // namespace kiln

#endif
