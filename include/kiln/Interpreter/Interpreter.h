//===- Interpreter.h - the reference interpreter for kiln IR --------------===//
//
// The oracle for every pass and backend: executes any kiln module in plain
// C++ with every value held and accumulated in double precision. Each
// contraction sums over k in ascending order, so results do not depend on
// thread count.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_INTERPRETER_INTERPRETER_H
#define KILN_INTERPRETER_INTERPRETER_H

#include "kiln/Quant/Quant.h"

#include "mlir/IR/BuiltinOps.h"

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <functional>
#include <vector>

namespace kiln {

class Checkpoint;

struct Tensor {
  std::vector<int64_t> shape;
  std::vector<double> data;

  Tensor() = default;
  explicit Tensor(std::vector<int64_t> shape, double fill = 0.0);
  static size_t count(const std::vector<int64_t> &shape);
  size_t size() const { return data.size(); }
};

class Interpreter {
public:
  /// `module` must outlive the interpreter. Weights without an inline value
  /// come from the checkpoint named by the module's `kiln.checkpoint`.
  explicit Interpreter(mlir::ModuleOp module);
  ~Interpreter();

  /// Runs function `name`; throws kiln::Error on bad arguments (wrong count
  /// or shape, token or position ids out of range).
  std::vector<Tensor> call(const std::string &name, const std::vector<Tensor> &args);

  /// Threads used inside contractions (default: hardware concurrency).
  void setThreads(unsigned threads) { threads_ = threads ? threads : 1; }

  /// Called before each op (weights excepted) with its operand values, for
  /// calibration; pass an empty function to remove it.
  using Observer = std::function<void(mlir::Operation *, const std::vector<const Tensor *> &operands)>;
  void setObserver(Observer observer) { observer_ = std::move(observer); }

  /// Leaves LM head results at zero instead of computing them: calibration
  /// observes operands only, and the vocabulary-wide product is most of a
  /// small model's work.
  void setLogitsSkipped(bool skipped) { logitsSkipped_ = skipped; }

  /// Gives the adapter slots (kiln/IR/Adapters.h) the values of switchable
  /// adapter `name` ("none": the base model, the default); throws kiln::Error
  /// for an adapter the module does not have.
  void setAdapter(const std::string &name);

private:
  struct State;
  const Tensor &global(mlir::Operation *globalOp);
  const Tensor &transposedGlobal(mlir::Operation *globalOp);

  mlir::ModuleOp module_;
  std::unique_ptr<Checkpoint> checkpoint_;
  std::map<mlir::Operation *, Tensor> globals_, transposed_;
  unsigned threads_;
  Observer observer_;
  bool logitsSkipped_ = false;
};

/// Drives a kiln module's prefill/decode functions over its KV cache the way
/// the runtime drives an artifact: chunked prefill, one-token decode.
class ReferenceModel {
public:
  explicit ReferenceModel(mlir::ModuleOp module);

  int64_t promptLen() const { return promptLen_; }
  int64_t contextLen() const { return ctxLen_; }
  int64_t vocabSize() const { return vocab_; }
  int64_t position() const { return position_; }
  Interpreter &interpreter() { return interp_; }

  /// Appends tokens (in chunks of promptLen) and returns the logits after the
  /// last one. Throws if the context would overflow.
  std::vector<float> prefill(const std::vector<int32_t> &ids);
  /// Appends one token and returns the logits after it.
  std::vector<float> decode(int32_t id);
  /// Logits for every token of `ids` (a fresh sequence), computed by the
  /// prefill function alone; requires an all-logits prefill of >= ids.size() slots.
  std::vector<std::vector<double>> scoreAll(const std::vector<int32_t> &ids);
  void reset();

private:
  std::vector<Tensor> run(const std::string &fn, const std::vector<int32_t> &ids, int64_t slots);

  mlir::ModuleOp module_;
  Interpreter interp_;
  int64_t promptLen_ = 0, ctxLen_ = 0, vocab_ = 0, position_ = 0;
  bool prefillAllLogits_ = false;
  std::vector<Tensor> caches_;
};

} // namespace kiln

#endif

namespace kiln {
/// The values of a kiln.global as doubles, row-major in its logical shape:
/// its inline `value`, or the checkpoint tensor of the same name (opened
/// once into `checkpoint` from the module's kiln.checkpoint attribute).
std::vector<double> readGlobalValues(mlir::Operation *globalOp, std::unique_ptr<Checkpoint> &checkpoint);
/// The storage format of a kiln.global (f32 when it has no `quant`).
QuantSpec quantSpecOf(mlir::Operation *globalOp);
/// The values the model computes with: readGlobalValues after the global's
/// `quant` format (quantized and dequantized as include/kiln/Quant/Quant.h defines).
std::vector<double> readEffectiveGlobalValues(mlir::Operation *globalOp, std::unique_ptr<Checkpoint> &checkpoint);
} // namespace kiln
