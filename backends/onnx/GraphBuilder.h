//===- GraphBuilder.h - assembling the ONNX model of an onnx artifact -----===//
//
// MLIR-free: a thin layer over Debian's libonnx protobuf classes. Nodes get
// torch-exporter style names ("/h.0/attn/MatMul_3", outputs
// "..._output_0"), small constants are Constant nodes (deduplicated), and
// weights are initializers whose bytes live in the artifact's weights.bin
// (ONNX external data), so the model file stays small and models past
// protobuf's 2 GB limit work.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_BACKENDS_ONNX_GRAPHBUILDER_H
#define KILN_BACKENDS_ONNX_GRAPHBUILDER_H

#include "kiln/Backend/Artifact.h"

#include "onnx/onnx_pb.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace kiln::onnxb {

/// The opset the graph is written against (QEfficient's export opset).
inline constexpr int64_t kOpset = 17;
/// The domain of QEfficient's KV-cache custom ops.
inline constexpr const char *kQualcommDomain = "com.qualcomm.cloud";
/// The domain of ONNX Runtime's contrib ops (MatMulNBits).
inline constexpr const char *kMicrosoftDomain = "com.microsoft";

using Attrs = std::vector<onnx::AttributeProto>;

class GraphBuilder {
public:
  /// Initializer bytes go to `writer`'s weights.bin.
  explicit GraphBuilder(ArtifactWriter &writer);

  onnx::ModelProto &model() { return model_; }
  onnx::GraphProto &graph() { return *model_.mutable_graph(); }

  /// Node names start with this scope ("/h.0/attn"); empty: "/".
  void setScope(std::string scope) { scope_ = std::move(scope); }
  const std::string &scope() const { return scope_; }

  /// Adds a node and returns the names of its `outputs` outputs.
  std::vector<std::string> nodeN(const std::string &op, const std::vector<std::string> &inputs, int outputs,
                                 Attrs attrs = {}, const std::string &domain = "");
  /// A node with one output.
  std::string node(const std::string &op, const std::vector<std::string> &inputs, Attrs attrs = {},
                   const std::string &domain = "");
  /// A node whose single output gets a fixed name (a graph output).
  void nodeTo(const std::string &output, const std::string &op, const std::vector<std::string> &inputs,
              Attrs attrs = {}, const std::string &domain = "");

  /// Constant nodes, deduplicated by value: int64 1-D (or scalar) and
  /// float / int8 scalars.
  std::string constI64(const std::vector<int64_t> &values);
  std::string scalarI64(int64_t value);
  std::string scalarF32(float value);
  std::string scalarI8(int8_t value);
  std::string scalarI32(int32_t value);

  /// A weight initializer of `dtype` (onnx::TensorProto_DataType) with its
  /// bytes appended to weights.bin; `name` is also its manifest entry.
  std::string initializer(const std::string &name, int32_t dtype, const std::vector<int64_t> &shape,
                          const void *data, uint64_t bytes, const std::string &layout);

  /// Declares a graph input or output of an element type and shape, whose
  /// symbolic dims (dim_param) are given as strings and fixed dims as ints.
  struct Dim {
    int64_t value = -1;
    std::string param;
    Dim(int64_t v) : value(v) {}
    Dim(const char *p) : param(p) {}
    Dim(std::string p) : param(std::move(p)) {}
  };
  void input(const std::string &name, int32_t dtype, const std::vector<Dim> &shape);
  void output(const std::string &name, int32_t dtype, const std::vector<Dim> &shape);

  /// Uses `domain` (version 1) from the model's opset imports.
  void importDomain(const std::string &domain);

private:
  std::string uniqueName(const std::string &op);
  std::string constant(const std::string &key, onnx::TensorProto value);

  ArtifactWriter &writer_;
  onnx::ModelProto model_;
  std::string scope_;
  std::map<std::string, int> counters_;
  std::map<std::string, std::string> constants_;
};

/// attribute helpers
onnx::AttributeProto attr(const std::string &name, int64_t value);
onnx::AttributeProto attr(const std::string &name, float value);
onnx::AttributeProto attr(const std::string &name, const std::vector<int64_t> &values);
onnx::AttributeProto attr(const std::string &name, const onnx::TensorProto &value);

/// The model-local functions com.qualcomm.cloud::CtxScatter and CtxGather
/// (QEfficient's signatures; bodies of ScatterND and GatherND batch_dims=2,
/// so ONNX Runtime inlines them without a custom-op library).
onnx::FunctionProto ctxScatterFunction();
onnx::FunctionProto ctxGatherFunction();

/// Strict shape inference with type checks and, given the written file's
/// path, onnx::checker::check_model on it (which resolves the external
/// data): Python's check_model(full_check=True). Throws kiln::Error with the
/// checker's message.
void checkModel(const onnx::ModelProto &model, const std::string &path);

/// A readable dump of the graph (inputs, outputs, nodes in ONNX's textual
/// syntax, the initializers' types and the functions), for lit tests and
/// `kiln compile --target onnx --emit lowered`.
std::string dumpModel(const onnx::ModelProto &model);

} // namespace kiln::onnxb

#endif
