//===- GraphBuilder.cpp - assembling the ONNX model of an onnx artifact ---===//
#include "GraphBuilder.h"

#include "kiln/Support/Error.h"

#include "onnx/checker.h"
#include "onnx/defs/attr_proto_util.h"
#include "onnx/defs/printer.h"
#include "onnx/defs/schema.h"
#include "onnx/shape_inference/implementation.h"

#include <cstring>
#include <mutex>
#include <sstream>

namespace kiln::onnxb {

using onnx::TensorProto;

onnx::AttributeProto attr(const std::string &name, int64_t value) { return onnx::MakeAttribute(name, value); }
onnx::AttributeProto attr(const std::string &name, float value) { return onnx::MakeAttribute(name, value); }
onnx::AttributeProto attr(const std::string &name, const std::vector<int64_t> &values) {
  return onnx::MakeAttribute(name, values);
}
onnx::AttributeProto attr(const std::string &name, const TensorProto &value) { return onnx::MakeAttribute(name, value); }

GraphBuilder::GraphBuilder(ArtifactWriter &writer) : writer_(writer) {
  // IR version 8: model-local functions (ONNX 1.10+).
  model_.set_ir_version(8);
  model_.set_producer_name("kiln");
  model_.set_producer_version("0.1");
  auto *opset = model_.add_opset_import();
  opset->set_domain("");
  opset->set_version(kOpset);
  graph().set_name("kiln");
}

void GraphBuilder::importDomain(const std::string &domain) {
  for (const auto &o : model_.opset_import())
    if (o.domain() == domain)
      return;
  auto *opset = model_.add_opset_import();
  opset->set_domain(domain);
  opset->set_version(1);
}

std::string GraphBuilder::uniqueName(const std::string &op) {
  std::string base = (scope_.empty() ? "" : scope_) + "/" + op;
  int n = counters_[base]++;
  return n ? base + "_" + std::to_string(n) : base;
}

std::vector<std::string> GraphBuilder::nodeN(const std::string &op, const std::vector<std::string> &inputs,
                                             int outputs, Attrs attrs, const std::string &domain) {
  onnx::NodeProto *n = graph().add_node();
  n->set_name(uniqueName(op));
  n->set_op_type(op);
  if (!domain.empty()) {
    n->set_domain(domain);
    importDomain(domain);
  }
  for (const auto &i : inputs)
    n->add_input(i);
  std::vector<std::string> names;
  for (int i = 0; i < outputs; ++i) {
    names.push_back(n->name() + "_output_" + std::to_string(i));
    n->add_output(names.back());
  }
  for (auto &a : attrs)
    *n->add_attribute() = std::move(a);
  return names;
}

std::string GraphBuilder::node(const std::string &op, const std::vector<std::string> &inputs, Attrs attrs,
                               const std::string &domain) {
  return nodeN(op, inputs, 1, std::move(attrs), domain)[0];
}

void GraphBuilder::nodeTo(const std::string &output, const std::string &op, const std::vector<std::string> &inputs,
                          Attrs attrs, const std::string &domain) {
  node(op, inputs, std::move(attrs), domain);
  graph().mutable_node(graph().node_size() - 1)->set_output(0, output);
}

std::string GraphBuilder::constant(const std::string &key, TensorProto value) {
  if (auto it = constants_.find(key); it != constants_.end())
    return it->second;
  std::string saved = scope_;
  scope_ = "/constants";
  std::string out = node("Constant", {}, {onnx::MakeAttribute("value", value)});
  scope_ = saved;
  constants_[key] = out;
  return out;
}

std::string GraphBuilder::constI64(const std::vector<int64_t> &values) {
  std::string key = "i64[";
  for (int64_t v : values)
    key += std::to_string(v) + ",";
  TensorProto t;
  t.set_data_type(TensorProto::INT64);
  t.add_dims(int64_t(values.size()));
  for (int64_t v : values)
    t.add_int64_data(v);
  return constant(key, t);
}

namespace {
/// A 0-d tensor of `type`; int8 and int32 values live in int32_data.
TensorProto scalar(int32_t type, int64_t integer, float real) {
  TensorProto t;
  t.set_data_type(type);
  if (type == TensorProto::FLOAT)
    t.add_float_data(real);
  else if (type == TensorProto::INT64)
    t.add_int64_data(integer);
  else
    t.add_int32_data(int32_t(integer));
  return t;
}
} // namespace

std::string GraphBuilder::scalarI64(int64_t value) {
  return constant("i64 " + std::to_string(value), scalar(TensorProto::INT64, value, 0));
}
std::string GraphBuilder::scalarI32(int32_t value) {
  return constant("i32 " + std::to_string(value), scalar(TensorProto::INT32, value, 0));
}
std::string GraphBuilder::scalarI8(int8_t value) {
  return constant("i8 " + std::to_string(value), scalar(TensorProto::INT8, value, 0));
}
std::string GraphBuilder::scalarF32(float value) {
  uint32_t bits; // by bits: 0 and -0 are different constants
  std::memcpy(&bits, &value, 4);
  return constant("f32 " + std::to_string(bits), scalar(TensorProto::FLOAT, 0, value));
}

std::string GraphBuilder::initializer(const std::string &name, int32_t dtype, const std::vector<int64_t> &shape,
                                      const void *data, uint64_t bytes, const std::string &layout) {
  static const std::map<int32_t, const char *> kDtypeNames = {
      {TensorProto::FLOAT, "f32"}, {TensorProto::FLOAT16, "f16"}, {TensorProto::BFLOAT16, "bf16"},
      {TensorProto::INT8, "i8"},   {TensorProto::UINT8, "u8"},    {TensorProto::INT32, "i32"}};
  WeightEntry entry;
  entry.name = name;
  entry.layout = layout;
  entry.dtype = kDtypeNames.at(dtype);
  entry.shape = shape;
  entry.bytes = bytes;
  uint64_t offset = writer_.addWeight(entry, data);
  TensorProto *t = graph().add_initializer();
  t->set_name(name);
  t->set_data_type(dtype);
  for (int64_t d : shape)
    t->add_dims(d);
  t->set_data_location(TensorProto::EXTERNAL);
  auto entryOf = [&](const char *key, const std::string &value) {
    auto *e = t->add_external_data();
    e->set_key(key);
    e->set_value(value);
  };
  entryOf("location", "weights.bin");
  entryOf("offset", std::to_string(offset));
  entryOf("length", std::to_string(bytes));
  return name;
}

namespace {
void setType(onnx::ValueInfoProto &v, const std::string &name, int32_t dtype,
             const std::vector<GraphBuilder::Dim> &shape) {
  v.set_name(name);
  auto *tensor = v.mutable_type()->mutable_tensor_type();
  tensor->set_elem_type(dtype);
  auto *s = tensor->mutable_shape();
  for (const auto &d : shape) {
    auto *dim = s->add_dim();
    if (d.param.empty())
      dim->set_dim_value(d.value);
    else
      dim->set_dim_param(d.param);
  }
}
} // namespace

void GraphBuilder::input(const std::string &name, int32_t dtype, const std::vector<Dim> &shape) {
  setType(*graph().add_input(), name, dtype, shape);
}
void GraphBuilder::output(const std::string &name, int32_t dtype, const std::vector<Dim> &shape) {
  setType(*graph().add_output(), name, dtype, shape);
}

//===----------------------------------------------------------------------===//
// CtxScatter / CtxGather
//===----------------------------------------------------------------------===//

namespace {
/// Builds a function body node by node.
struct FunctionBody {
  onnx::FunctionProto f;
  int n = 0;
  std::string node(const std::string &op, const std::vector<std::string> &inputs, Attrs attrs = {},
                   std::string out = "") {
    onnx::NodeProto *node = f.add_node();
    node->set_op_type(op);
    for (const auto &i : inputs)
      node->add_input(i);
    if (out.empty())
      out = "t" + std::to_string(n++);
    node->add_output(out);
    for (auto &a : attrs)
      *node->add_attribute() = std::move(a);
    return out;
  }
  std::string i64(const std::vector<int64_t> &values, bool scalar = false) {
    TensorProto t;
    t.set_data_type(TensorProto::INT64);
    if (!scalar)
      t.add_dims(int64_t(values.size()));
    for (int64_t v : values)
      t.add_int64_data(v);
    return node("Constant", {}, {onnx::MakeAttribute("value", t)});
  }
};

void startFunction(onnx::FunctionProto &f, const char *name, const std::vector<std::string> &inputs,
                   const std::string &output, const char *doc) {
  f.set_name(name);
  f.set_domain(kQualcommDomain);
  f.set_doc_string(doc);
  for (const auto &i : inputs)
    f.add_input(i);
  f.add_output(output);
  auto *opset = f.add_opset_import();
  opset->set_domain("");
  opset->set_version(kOpset);
}
} // namespace

onnx::FunctionProto ctxScatterFunction() {
  FunctionBody b;
  startFunction(b.f, "CtxScatter", {"data", "position_ids", "updates"}, "output",
                "data[b, h, position_ids[b, s]] = updates[b, h, s] (ScatterND over [B, H, S, 3] indices)");
  std::string shape = b.node("Shape", {"data"});
  std::string zero = b.i64({0}), one = b.i64({1}), two = b.i64({2});
  std::string batch = b.node("Slice", {shape, zero, one});
  std::string heads = b.node("Slice", {shape, one, two});
  std::string seq = b.node("Slice", {b.node("Shape", {"position_ids"}), one, two});
  std::string bhs = b.node("Concat", {batch, heads, seq}, {attr("axis", int64_t(0))});
  std::string start = b.i64({0}, true), step = b.i64({1}, true);
  std::string rangeB = b.node("Range", {start, b.node("Squeeze", {batch, zero}), step});
  std::string rangeH = b.node("Range", {start, b.node("Squeeze", {heads, zero}), step});
  std::string last = b.i64({-1});
  auto index = [&](const std::string &v, const std::vector<int64_t> &axes) {
    return b.node("Unsqueeze", {b.node("Expand", {b.node("Unsqueeze", {v, b.i64(axes)}), bhs}), last});
  };
  std::string indices = b.node("Concat", {index(rangeB, {1, 2}), index(rangeH, {0, 2}), index("position_ids", {1})},
                               {attr("axis", int64_t(-1))});
  b.node("ScatterND", {"data", indices, "updates"}, {}, "output");
  return b.f;
}

onnx::FunctionProto ctxGatherFunction() {
  FunctionBody b;
  startFunction(b.f, "CtxGather", {"data", "ctx_indices", "comp_ctx_len"}, "output",
                "output[b, h, c] = data[b, h, ctx_indices[b, h, c]] for c < comp_ctx_len (GatherND, batch_dims=2)");
  std::string bh = b.node("Slice", {b.node("Shape", {"data"}), b.i64({0}), b.i64({2})});
  std::string len = b.node("Reshape", {"comp_ctx_len", b.i64({1})});
  std::string target = b.node("Concat", {bh, len}, {attr("axis", int64_t(0))});
  std::string indices = b.node("Unsqueeze", {b.node("Expand", {"ctx_indices", target}), b.i64({-1})});
  b.node("GatherND", {"data", indices}, {attr("batch_dims", int64_t(2))}, "output");
  return b.f;
}

//===----------------------------------------------------------------------===//
// Checking and dumping
//===----------------------------------------------------------------------===//

namespace {
/// ONNX Runtime's com.microsoft::MatMulNBits, registered with ONNX's schema
/// registry so the checker validates its nodes and shape inference runs
/// through them (Y = A with its last dim N).
void registerContribSchemas() {
  static std::once_flag once;
  std::call_once(once, [] {
    auto &domains = onnx::OpSchemaRegistry::DomainToVersionRange::Instance();
    if (!domains.Map().count(kMicrosoftDomain))
      domains.AddDomainToVersion(kMicrosoftDomain, 1, 1);
    if (onnx::OpSchemaRegistry::Schema("MatMulNBits", 1, kMicrosoftDomain))
      return;
    onnx::OpSchema schema;
    schema.SetName("MatMulNBits")
        .SetDomain(kMicrosoftDomain)
        .SinceVersion(1)
        .SetDoc("Y = A @ dequantize(B)^T, B quantized block-wise along K (ONNX Runtime contrib op)")
        .Attr("K", "inner dimension", onnx::AttributeProto::INT)
        .Attr("N", "output dimension", onnx::AttributeProto::INT)
        .Attr("bits", "bits per weight", onnx::AttributeProto::INT)
        .Attr("block_size", "weights per block along K", onnx::AttributeProto::INT)
        .Attr("accuracy_level", "minimum compute precision", onnx::AttributeProto::INT, int64_t(0))
        .Input(0, "A", "activations [..., K]", "T1")
        .Input(1, "B", "packed weights [N, k_blocks, blob]", "T2")
        .Input(2, "scales", "per block scales", "T1")
        .Input(3, "zero_points", "packed zero points", "T3", onnx::OpSchema::Optional)
        .Output(0, "Y", "[..., N]", "T1")
        .TypeConstraint("T1", {"tensor(float)", "tensor(float16)"}, "activations")
        .TypeConstraint("T2", {"tensor(uint8)"}, "packed weights")
        .TypeConstraint("T3", {"tensor(uint8)", "tensor(float)", "tensor(float16)"}, "zero points")
        .TypeAndShapeInferenceFunction([](onnx::InferenceContext &ctx) {
          onnx::propagateElemTypeFromInputToOutput(ctx, 0, 0);
          if (!onnx::hasInputShape(ctx, 0))
            return;
          onnx::TensorShapeProto shape = ctx.getInputType(0)->tensor_type().shape();
          auto *n = ctx.getAttribute("N");
          if (shape.dim_size() == 0 || !n)
            return;
          shape.mutable_dim(shape.dim_size() - 1)->set_dim_value(n->i());
          onnx::updateOutputShape(ctx, 0, shape);
        });
    onnx::OpSchemaRegistry::OpSchemaRegisterOnce registered(schema);
  });
}
} // namespace

void checkModel(const onnx::ModelProto &model, const std::string &path) {
  registerContribSchemas();
  try {
    if (!path.empty())
      onnx::checker::check_model(path);
    onnx::ModelProto inferred = model;
    onnx::ShapeInferenceOptions options(/*check_type=*/true, /*strict_mode=*/1, /*data_prop=*/false);
    onnx::shape_inference::InferShapes(inferred, onnx::OpSchemaRegistry::Instance(), options);
  } catch (const std::exception &e) {
    std::string message = e.what();
    for (char &c : message)
      if (c == '\n')
        c = ' ';
    throw Error("onnx backend: the generated model fails the ONNX checker: " + message);
  }
}

std::string dumpModel(const onnx::ModelProto &model) {
  std::ostringstream os;
  os << "ir_version " << model.ir_version() << ", opset_import [";
  for (int i = 0; i < model.opset_import_size(); ++i)
    os << (i ? ", " : "") << '"' << model.opset_import(i).domain() << "\" : " << model.opset_import(i).version();
  os << "]\n";
  const onnx::GraphProto &g = model.graph();
  os << "inputs " << g.input() << "\n";
  os << "outputs " << g.output() << "\n";
  for (const auto &t : g.initializer()) {
    os << "initializer " << t.name() << " : " << onnx::TensorProto_DataType_Name(t.data_type()) << "[";
    for (int i = 0; i < t.dims_size(); ++i)
      os << (i ? "," : "") << t.dims(i);
    os << "]\n";
  }
  for (const auto &n : g.node()) {
    os << n << "\n";
  }
  for (const auto &f : model.functions())
    os << f << "\n";
  return os.str();
}

} // namespace kiln::onnxb
