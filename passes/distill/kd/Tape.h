//===- Tape.h - f32 forward and backward of a kiln function, for training --===//
//
// Runs a module's prefill function over one window of T tokens at positions
// 0..T-1 with empty caches, in float32 with BLAS products, keeping every
// value for the backward pass. Training reads the function the way the
// reference interpreter does (every op of the kiln dialect, every weight
// format at its effective values, int8 activations and KV cache rows as
// the student computes them), with two window-level readings: a cache
// update of an empty cache is its update (attention then sees exactly the
// window's T rows) and select_last keeps every position, so the logits are
// [T, vocab]. Quantization steps pass gradients straight through.
//
// Gradients flow to every value and to the weights marked trainable.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_PASSES_DISTILL_KD_TAPE_H
#define KILN_PASSES_DISTILL_KD_TAPE_H

#include "kiln/IR/KilnOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/DenseMap.h"

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

namespace kiln {
class Checkpoint;

namespace kd {

/// Row-major float32 tensor.
struct Buf {
  std::vector<int64_t> shape;
  std::vector<float> data;
  size_t size() const { return data.size(); }
};

/// A weight of the tape: its effective values, and (if trainable) a gradient.
struct Param {
  GlobalOp global;
  Buf value;
  std::vector<float> grad; ///< empty unless trainable
};

class Tape {
public:
  /// Reads `func`'s weights (effective values) once. Throws kiln::Error on an
  /// op it cannot train through.
  explicit Tape(mlir::func::FuncOp func);
  ~Tape();

  /// Marks a weight trainable (it gets a gradient); false if the function does not read it.
  bool setTrainable(GlobalOp global);
  Param *param(GlobalOp global);
  std::vector<Param *> params();

  /// Forward over `ids` (positions 0..T-1); returns the logits [T, vocab].
  const Buf &forward(const std::vector<int32_t> &ids);
  /// Backward from d(loss)/d(logits) of the last forward; accumulates into
  /// the trainable weights' gradients (gradOf gives every value's, for tests).
  void backward(const std::vector<float> &dLogits);
  /// The gradient of a value after backward (tests); empty if none flowed.
  const std::vector<float> &gradOf(mlir::Value v);
  const Buf &valueOf(mlir::Value v);
  void zeroGrads();

  /// Threads of the BLAS products (OpenBLAS); results depend on it only through rounding.
  static void setThreads(int threads);

private:
  void forwardOp(mlir::Operation &op);
  void backwardOp(mlir::Operation &op);
  Buf &val(mlir::Value v);

  mlir::func::FuncOp func_;
  std::unique_ptr<Checkpoint> checkpoint_;
  llvm::DenseMap<mlir::Operation *, size_t> paramIndex_;
  std::vector<Param> params_;
  // std::map: references stay valid while values are added.
  std::map<const void *, Buf> values_;
  std::map<const void *, std::vector<float>> grads_;
  std::map<mlir::Operation *, std::vector<float>> preGelu_, quantizedInput_;
  std::vector<int32_t> ids_;
  int64_t T_ = 0;
};

} // namespace kd
} // namespace kiln

#endif
