//===- Lowering.cpp - kiln IR to an ONNX graph ----------------------------===//
//
// One pass over @prefill's ops in order, each lowered to standard ONNX
// (opset 17) ops with symbolic batch, sequence and context lengths:
//
//   embedding         Gather (position ids clamped to 0: padding reads row 0)
//   layer_norm        LayerNormalization (residual_layer_norm: Add first)
//   linear            MatMul + Add; int8/int4 weights: com.microsoft::MatMulNBits;
//                     int8 activations (W8A8): QuantizeLinear / Clip / DequantizeLinear
//                     of the input rows and DequantizeLinear of int8 weights
//   gelu              the tanh (or erf) formula in elementary ops
//   cache_update      com.qualcomm.cloud::CtxScatter (int8 cache: rows QDQ'd first)
//   a matmul reading  com.qualcomm.cloud::CtxGather over [0, ctx_len) with slots past
//   a cache           max(position_ids) gathered from 0, values there zeroed (Where)
//   causal_mask       Where(ctx > position, -inf, scores); then Softmax in f32
//   select_last       GatherND at ArgMax(position_ids)
//   lm_head           Gemm (transB) on the [vocab, dim] table, or MatMulNBits
//
//===----------------------------------------------------------------------===//
#include "Lowering.h"
#include "WeightEncoding.h"

#include "kiln/Frontend/Checkpoint.h"
#include "kiln/IR/KilnDialect.h"
#include "kiln/IR/KilnOps.h"
#include "kiln/Interpreter/Interpreter.h"
#include "kiln/Support/Error.h"
#include "kiln/Support/Float16.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/TypeSwitch.h"

#include <limits>
#include <map>

using namespace mlir;
using onnx::TensorProto;

namespace kiln::onnxb {
namespace {

std::vector<int64_t> shapeOf(Value v) {
  auto s = cast<RankedTensorType>(v.getType()).getShape();
  return {s.begin(), s.end()};
}
int64_t lastDim(Value v) { return shapeOf(v).back(); }

[[noreturn]] void unsupported(Operation *op, const std::string &why) {
  throw Error("onnx backend: cannot lower '" + op->getName().getStringRef().str() + "': " + why);
}

/// The stored float type of a float-format global: its quant format, or
/// its element type (a checkpoint's f16/bf16 tensors stay 16-bit).
int32_t storedFloatType(GlobalOp g, const QuantSpec &spec) {
  if (spec.format == WeightFormat::F16)
    return TensorProto::FLOAT16;
  if (spec.format == WeightFormat::BF16)
    return TensorProto::BFLOAT16;
  Type e = cast<RankedTensorType>(g.getType()).getElementType();
  if (spec.format == WeightFormat::F32 && e.isF16())
    return TensorProto::FLOAT16;
  if (spec.format == WeightFormat::F32 && e.isBF16())
    return TensorProto::BFLOAT16;
  return TensorProto::FLOAT;
}

class Lowering {
public:
  Lowering(ModuleOp module, GraphBuilder &g) : module_(module), g_(g) {}

  GraphInterface run() {
    func_ = module_.lookupSymbol<func::FuncOp>("prefill");
    if (!func_)
      func_ = module_.lookupSymbol<func::FuncOp>("decode");
    if (!func_)
      throw Error("onnx backend: module has no prefill or decode function");
    auto config = module_->getAttrOfType<DictionaryAttr>(kConfigAttr);
    if (!config)
      throw Error("onnx backend: module has no kiln.config attribute");
    auto cfg = [&](const char *key) {
      auto a = config.getAs<IntegerAttr>(key);
      if (!a)
        throw Error(std::string("onnx backend: kiln.config has no integer ") + key);
      return a.getInt();
    };
    iface_.promptLen = cfg("prompt_len");
    iface_.ctxLen = cfg("ctx_len");
    iface_.batch = cfg("batch");
    declareInterface();
    for (Operation &op : func_.getBody().front())
      lower(op);
    // The weights' float type: the one most of their bytes are in.
    int64_t best = -1;
    for (const auto &[type, bytes] : floatBytes_)
      if (bytes > best) {
        best = bytes;
        iface_.weightType = type == TensorProto::FLOAT16 ? "f16" : type == TensorProto::BFLOAT16 ? "bf16" : "f32";
      }
    return iface_;
  }

private:
  //===--------------------------------------------------------------------===//
  // The graph's inputs and outputs
  //===--------------------------------------------------------------------===//

  static std::string nameAttr(DictionaryAttr attrs) {
    auto n = attrs ? attrs.getAs<StringAttr>("kiln.name") : StringAttr();
    return n ? n.str() : "";
  }

  void declareInterface() {
    for (BlockArgument arg : func_.getArguments()) {
      std::string name = nameAttr(func_.getArgAttrDict(arg.getArgNumber()));
      auto shape = shapeOf(arg);
      if (name == "input_ids" || name == "position_ids") {
        g_.input(name, TensorProto::INT64, {"batch_size", "seq_len"});
        if (name == "position_ids")
          positions_ = name;
      } else if (name.rfind("past_key.", 0) == 0 || name.rfind("past_value.", 0) == 0) {
        if (shape.size() != 4)
          throw Error("onnx backend: cache argument " + name + " is not [batch, heads, ctx, head_dim]");
        g_.input(name, TensorProto::FLOAT, {"batch_size", shape[1], "ctx_len", shape[3]});
        if (name.rfind("past_key.", 0) == 0)
          iface_.cacheHeads.push_back(shape[1]);
        if (firstCache_.empty())
          firstCache_ = name;
      } else {
        throw Error("onnx backend: argument " + std::to_string(arg.getArgNumber()) + " of @" + func_.getName().str() +
                    " has no known kiln.name ('" + name + "')");
      }
      names_[arg] = name;
    }
    if (positions_.empty())
      throw Error("onnx backend: @" + func_.getName().str() + " has no position_ids argument");
    auto ret = cast<func::ReturnOp>(func_.getBody().front().getTerminator());
    for (unsigned i = 0; i < ret.getNumOperands(); ++i) {
      Value v = ret.getOperand(i);
      std::string name = nameAttr(func_.getResultAttrDict(i));
      auto shape = shapeOf(v);
      if (name == "logits") {
        if (shape.size() != 3 || shape[1] != 1)
          throw Error("onnx backend: logits must be [batch, 1, vocab] (the last position's; a module imported with "
                      "--all-logits has them for every position)");
        g_.output(name, TensorProto::FLOAT, {"batch_size", 1, shape[2]});
      } else if (name.rfind("present_", 0) == 0) {
        // QEfficient's names: the retained state of input X is X_RetainedState.
        name = "past_" + name.substr(8) + "_RetainedState";
        g_.output(name, TensorProto::FLOAT, {"batch_size", shape[1], "ctx_len", shape[3]});
      } else {
        throw Error("onnx backend: result " + std::to_string(i) + " of @" + func_.getName().str() +
                    " has no known kiln.name ('" + name + "')");
      }
      outputs_.push_back(name);
      if (!isa<BlockArgument>(v) && !outputOf_.count(v))
        outputOf_[v] = name;
    }
  }

  /// Records `produced` as v's ONNX value; a graph output takes its name
  /// (the producing node is renamed when it was the last one added).
  void define(Value v, const std::string &produced) {
    auto it = outputOf_.find(v);
    if (it == outputOf_.end()) {
      names_[v] = produced;
      return;
    }
    onnx::GraphProto &graph = g_.graph();
    onnx::NodeProto *last = graph.node_size() ? graph.mutable_node(graph.node_size() - 1) : nullptr;
    if (last && last->output_size() == 1 && last->output(0) == produced)
      last->set_output(0, it->second);
    else
      g_.nodeTo(it->second, "Identity", {produced});
    names_[v] = it->second;
  }

  std::string name(Value v) {
    if (auto it = names_.find(v); it != names_.end())
      return it->second;
    if (v.getDefiningOp<WeightOp>())
      return floatWeight(v);
    throw Error("onnx backend: internal error: a value used before it is defined");
  }

  //===--------------------------------------------------------------------===//
  // Weights
  //===--------------------------------------------------------------------===//

  GlobalOp global(Value w) {
    GlobalOp g = globalOf(w);
    if (!g)
      throw Error("onnx backend: a weight operand is not a kiln.weight of a kiln.global");
    return g;
  }
  std::vector<float> values(GlobalOp g) {
    std::vector<double> d = readGlobalValues(g, checkpoint_);
    return {d.begin(), d.end()};
  }
  std::string symbol(GlobalOp g) { return g.getSymName().str(); }

  void setScopeFromWeight(GlobalOp g) {
    std::string s = symbol(g);
    if (s.size() > 7 && s.compare(s.size() - 7, 7, ".weight") == 0)
      s.resize(s.size() - 7);
    else if (s.size() > 5 && s.compare(s.size() - 5, 5, ".bias") == 0)
      s.resize(s.size() - 5);
    // "h.0.attn.c_attn" -> "/h.0/attn/c_attn" (the torch exporter's style).
    std::string scope = "/";
    size_t start = 0;
    if (s.rfind("h.", 0) == 0) {
      size_t dot = s.find('.', 2);
      block_ = s.substr(0, dot);
      scope += block_;
      start = dot == std::string::npos ? s.size() : dot + 1;
      if (start < s.size())
        scope += "/";
    }
    for (size_t i = start; i < s.size(); ++i)
      scope += s[i] == '.' ? '/' : s[i];
    g_.setScope(scope);
  }
  void setBlockScope(const char *sub = nullptr) {
    std::string scope = block_.empty() ? "" : "/" + block_;
    if (sub)
      scope += std::string("/") + sub;
    g_.setScope(scope);
  }

  /// The weight as a float32 tensor: the initializer, or its Cast from the
  /// stored f16/bf16 (ORT folds it once at load); an integer format read as
  /// float (no consumer kernel) stores its dequantized values.
  std::string floatWeight(Value w) {
    GlobalOp g = global(w);
    if (auto it = floats_.find(g); it != floats_.end())
      return it->second;
    if (g.getAdapter()) {
      // A switchable adapter's factor: fed by the caller (the selected adapter's
      // values, zeros for none) and passed through as retained state.
      auto dims = cast<RankedTensorType>(g.getType()).getShape();
      g_.input(symbol(g), TensorProto::FLOAT, {dims[0], dims[1]});
      g_.output(symbol(g) + "_RetainedState", TensorProto::FLOAT, {dims[0], dims[1]});
      g_.setScope("/adapters");
      g_.nodeTo(symbol(g) + "_RetainedState", "Identity", {symbol(g)});
      iface_.adapterInputs.push_back(symbol(g));
      return floats_[g] = symbol(g);
    }
    std::string stored = storedWeight(g);
    QuantSpec spec = quantSpecOf(g);
    std::string out = stored;
    if (!spec.isInteger() && storedFloatType(g, spec) != TensorProto::FLOAT) {
      g_.setScope("/weights");
      out = g_.node("Cast", {stored}, {attr("to", int64_t(TensorProto::FLOAT))});
    }
    floats_[g] = out;
    return out;
  }

  /// The global in its float storage type (integer formats: dequantized f32).
  std::string storedWeight(GlobalOp g) {
    if (auto it = stored_.find(g); it != stored_.end())
      return it->second;
    QuantSpec spec = quantSpecOf(g);
    auto dims = cast<RankedTensorType>(g.getType()).getShape();
    std::vector<int64_t> shape(dims.begin(), dims.end());
    std::vector<double> effective = readEffectiveGlobalValues(g, checkpoint_);
    std::vector<float> v(effective.begin(), effective.end());
    int32_t type = spec.isInteger() ? int32_t(TensorProto::FLOAT) : storedFloatType(g, spec);
    std::string out;
    if (type == TensorProto::FLOAT) {
      out = g_.initializer(symbol(g), type, shape, v.data(), v.size() * 4, "onnx");
    } else {
      std::vector<uint16_t> half(v.size());
      for (size_t i = 0; i < v.size(); ++i)
        half[i] = type == TensorProto::FLOAT16 ? floatToHalf(v[i]) : floatToBf16(v[i]);
      out = g_.initializer(symbol(g), type, shape, half.data(), half.size() * 2, "onnx");
    }
    floatBytes_[type] += int64_t(v.size()) * (type == TensorProto::FLOAT ? 4 : 2);
    stored_[g] = out;
    return out;
  }

  struct NBits {
    std::string B, scales, zeroPoints;
    int64_t K, N, bits, blockSize, kBlocks;
  };
  /// The global packed for MatMulNBits (reduction along spec.axis).
  const NBits &nbits(GlobalOp g, Operation *user) {
    if (auto it = nbits_.find(g); it != nbits_.end())
      return it->second;
    QuantSpec spec = quantSpecOf(g);
    auto dims = cast<RankedTensorType>(g.getType()).getShape();
    std::vector<float> v = values(g);
    NBitsWeight w;
    try {
      w = packMatMulNBits(quantizeMatrix(v.data(), dims[0], dims[1], spec), spec);
    } catch (const Error &e) {
      unsupported(user, "weight @" + symbol(g) + ": " + e.what());
    }
    NBits n{"", "", "", w.K, w.N, w.bits, w.blockSize, w.kBlocks};
    std::string base = symbol(g);
    n.B = g_.initializer(base + ".qweight", TensorProto::UINT8, {w.N, w.kBlocks, w.blobBytes()}, w.B.data(), w.B.size(),
                         "matmulnbits");
    n.scales = g_.initializer(base + ".scales", TensorProto::FLOAT, {w.N, w.kBlocks}, w.scales.data(),
                              w.scales.size() * 4, "matmulnbits");
    if (!w.zeroPoints.empty())
      n.zeroPoints = g_.initializer(base + ".zero_points", TensorProto::UINT8, {w.N, w.zeroPointBytes()},
                                    w.zeroPoints.data(), w.zeroPoints.size(), "matmulnbits");
    return nbits_[g] = n;
  }

  /// x @ dequantize(B)^T through com.microsoft::MatMulNBits.
  std::string matMulNBits(const std::string &x, const NBits &n) {
    std::vector<std::string> inputs = {x, n.B, n.scales};
    if (!n.zeroPoints.empty())
      inputs.push_back(n.zeroPoints);
    return g_.node("MatMulNBits", inputs,
                   {attr("K", n.K), attr("N", n.N), attr("bits", n.bits), attr("block_size", n.blockSize)},
                   kMicrosoftDomain);
  }

  /// An int8 per-channel weight as ONNX int8 q and float scales (W8A8's
  /// QDQ form), and its DequantizeLinear: axis 1 for a [K, N] linear weight,
  /// 0 for a [V, E] table.
  struct Int8 {
    std::string q, scales, dequantized;
  };
  const Int8 &int8Weight(GlobalOp g) {
    if (auto it = int8_.find(g); it != int8_.end())
      return it->second;
    QuantSpec spec = quantSpecOf(g);
    auto dims = cast<RankedTensorType>(g.getType()).getShape();
    std::vector<float> v = values(g);
    Int8Weight w = int8PerChannel(quantizeMatrix(v.data(), dims[0], dims[1], spec), spec);
    int64_t channels = spec.axis == 0 ? dims[1] : dims[0];
    std::string base = symbol(g);
    Int8 r;
    r.q = g_.initializer(base + ".qweight", TensorProto::INT8, {dims[0], dims[1]}, w.q.data(), w.q.size(), "int8");
    r.scales =
        g_.initializer(base + ".scales", TensorProto::FLOAT, {channels}, w.scales.data(), w.scales.size() * 4, "int8");
    std::vector<int8_t> zeros(size_t(channels), 0);
    std::string z = g_.initializer(base + ".zero_points", TensorProto::INT8, {channels}, zeros.data(), zeros.size(),
                                   "int8");
    g_.setScope("/weights");
    r.dequantized = g_.node("DequantizeLinear", {r.q, r.scales, z}, {attr("axis", int64_t(spec.axis == 0 ? 1 : 0))});
    return int8_[g] = r;
  }
  static bool isInt8PerChannel(const QuantSpec &spec) {
    return spec.format == WeightFormat::Int8 && spec.groupSize == 0;
  }
  /// An LM head with int8 inputs reads this int8 table in the QDQ form
  /// (the embedding then gathers from the same tensors).
  bool qdqTable(GlobalOp g) {
    bool found = false;
    func_.walk([&](LMHeadOp h) {
      if (h.getInputQuant() && globalOf(h.getEmbedding()) == g && isInt8PerChannel(quantSpecOf(g)))
        found = true;
    });
    return found;
  }

  //===--------------------------------------------------------------------===//
  // Shared index math
  //===--------------------------------------------------------------------===//

  /// ctx_len as an int64 scalar (dim 2 of the caches).
  std::string ctxLen() {
    if (ctxLen_.empty()) {
      if (firstCache_.empty())
        throw Error("onnx backend: the graph has no KV cache inputs");
      g_.setScope("/ctx");
      std::string dim = g_.node("Slice", {g_.node("Shape", {firstCache_}), g_.constI64({2}), g_.constI64({3})});
      ctxLen_ = g_.node("Squeeze", {dim, g_.constI64({0})});
    }
    return ctxLen_;
  }
  /// arange(ctx_len), int64 [C].
  std::string ctxRange() {
    if (ctxRange_.empty()) {
      std::string len = ctxLen();
      g_.setScope("/ctx");
      ctxRange_ = g_.node("Range", {g_.scalarI64(0), len, g_.scalarI64(1)});
    }
    return ctxRange_;
  }
  /// [B, 1, S, C] bool: cache slot c is hidden from slot s (c > its position;
  /// every slot for a padding position -1).
  std::string mask() {
    if (mask_.empty()) {
      std::string range = ctxRange();
      g_.setScope("/mask");
      std::string pos = g_.node("Unsqueeze", {positions_, g_.constI64({1, 3})});
      mask_ = g_.node("Greater", {range, pos});
    }
    return mask_;
  }
  /// CtxGather's indices [B, 1, C] (slots past max(position_ids) read slot
  /// 0: an index ORT accepts, nothing to patch) and those slots [B, 1, C, 1].
  void gatherIndices() {
    if (!ctxIndices_.empty())
      return;
    std::string range = ctxRange();
    g_.setScope("/ctx");
    std::string maxPos = g_.node("ReduceMax", {positions_}, {attr("axes", std::vector<int64_t>{1}), attr("keepdims", int64_t(1))});
    std::string limit = g_.node("Unsqueeze", {maxPos, g_.constI64({2})});
    std::string invalid = g_.node("Greater", {range, limit});
    ctxIndices_ = g_.node("Where", {invalid, g_.scalarI64(0), range});
    invalidValues_ = g_.node("Unsqueeze", {invalid, g_.constI64({3})});
  }

  bool isCache(Value v) {
    if (auto arg = dyn_cast<BlockArgument>(v))
      return names_.count(v) && names_[v].rfind("past_", 0) == 0;
    return v.getDefiningOp<CacheUpdateOp>() != nullptr;
  }
  /// The cache read over [0, ctx_len) through CtxGather; values past the
  /// last position zeroed (they may hold a padding slot's junk).
  std::string gatherCache(Value cache, bool values) {
    std::string scope = g_.scope();
    gatherIndices();
    g_.setScope(scope);
    std::string c = name(cache);
    std::string gathered = g_.node("CtxGather", {c, ctxIndices_, ctxLen()}, {}, kQualcommDomain);
    if (!values)
      return gathered;
    return g_.node("Where", {invalidValues_, g_.scalarF32(0.0f), gathered});
  }

  //===--------------------------------------------------------------------===//
  // Activation quantization (QDQ)
  //===--------------------------------------------------------------------===//

  /// Each row (last axis) of x replaced by q * scale, q = clamp(rne(x /
  /// scale), -127, 127) in float32 (include/kiln/Quant/Quant.h):
  /// QuantizeLinear, Clip to the symmetric range, DequantizeLinear. Dynamic:
  /// scale = max|row| / 127 per row (per-axis over the rows; a zero row gets
  /// scale 1, giving zeros as the reference's scale 0 does); static: one
  /// calibrated scale.
  std::string quantizeRows(const std::string &x, int64_t K, float staticScale) {
    std::string lo = g_.scalarI8(-127), hi = g_.scalarI8(127);
    if (staticScale > 0) {
      std::string s = g_.scalarF32(staticScale), z = g_.scalarI8(0);
      std::string q = g_.node("Clip", {g_.node("QuantizeLinear", {x, s, z}), lo, hi});
      return g_.node("DequantizeLinear", {q, s, z});
    }
    std::string rows = g_.node("Reshape", {x, g_.constI64({-1, K})});
    std::string amax = g_.node("ReduceMax", {g_.node("Abs", {rows})},
                               {attr("axes", std::vector<int64_t>{1}), attr("keepdims", int64_t(0))});
    std::string scale = g_.node("Div", {amax, g_.scalarF32(127.0f)});
    std::string safe = g_.node("Where", {g_.node("Equal", {scale, g_.scalarF32(0.0f)}), g_.scalarF32(1.0f), scale});
    TensorProto zero;
    zero.set_data_type(TensorProto::INT8);
    zero.add_dims(1);
    zero.add_int32_data(0);
    std::string zp = g_.node("ConstantOfShape", {g_.node("Shape", {safe})}, {attr("value", zero)});
    std::string q = g_.node("Clip", {g_.node("QuantizeLinear", {rows, safe, zp}, {attr("axis", int64_t(0))}), lo, hi});
    std::string dq = g_.node("DequantizeLinear", {q, safe, zp}, {attr("axis", int64_t(0))});
    return g_.node("Reshape", {dq, g_.node("Shape", {x})});
  }

  std::string inputRows(Value input, std::optional<InputQuantization> quant, FloatAttr scale) {
    std::string x = name(input);
    if (!quant)
      return x;
    float s = *quant == InputQuantization::Static ? (scale ? float(scale.getValueAsDouble()) : 0.0f) : 0.0f;
    if (*quant == InputQuantization::Static && !(s > 0))
      throw Error("onnx backend: a static input quantization without a positive input_scale");
    return quantizeRows(x, lastDim(input), s);
  }

  //===--------------------------------------------------------------------===//
  // Ops
  //===--------------------------------------------------------------------===//

  std::string gelu(const std::string &x, GeluApproximation approx) {
    std::string half = g_.node("Mul", {x, g_.scalarF32(0.5f)}), one = g_.scalarF32(1.0f);
    if (approx == GeluApproximation::erf) {
      std::string e = g_.node("Erf", {g_.node("Mul", {x, g_.scalarF32(float(1.0 / std::sqrt(2.0)))})});
      return g_.node("Mul", {half, g_.node("Add", {e, one})});
    }
    std::string cube = g_.node("Mul", {g_.node("Mul", {x, x}), x});
    std::string inner = g_.node("Add", {x, g_.node("Mul", {cube, g_.scalarF32(0.044715f)})});
    std::string t = g_.node("Tanh", {g_.node("Mul", {inner, g_.scalarF32(float(std::sqrt(2.0 / M_PI)))})});
    return g_.node("Mul", {half, g_.node("Add", {t, one})});
  }

  /// x @ W (+ bias) for a linear's [K, N] weight.
  std::string linear(LinearOp l) {
    GlobalOp g = global(l.getWeight());
    setScopeFromWeight(g);
    QuantSpec spec = quantSpecOf(g);
    std::string x = inputRows(l.getInput(), l.getInputQuant(), l.getInputScaleAttr());
    std::string y;
    if (spec.isInteger() && l.getInputQuant() && isInt8PerChannel(spec) && spec.axis == 0) {
      std::string w = int8Weight(g).dequantized;
      setScopeFromWeight(g);
      y = g_.node("MatMul", {x, w});
    } else if (spec.isInteger()) {
      if (spec.axis != 0)
        unsupported(l, "weight @" + symbol(g) + " is quantized along axis " + std::to_string(spec.axis) +
                           ", a linear's reduction axis is 0");
      const NBits &n = nbits(g, l);
      setScopeFromWeight(g);
      y = matMulNBits(x, n);
    } else {
      std::string w = floatWeight(l.getWeight());
      setScopeFromWeight(g);
      y = g_.node("MatMul", {x, w});
    }
    if (l.getBias()) {
      std::string b = floatWeight(l.getBias());
      setScopeFromWeight(g);
      y = g_.node("Add", {y, b});
    }
    if (auto epilogue = l.getGeluEpilogue())
      y = gelu(y, *epilogue);
    return y;
  }

  /// x @ E^T for the [vocab, dim] table.
  std::string lmHead(LMHeadOp h) {
    GlobalOp g = global(h.getEmbedding());
    QuantSpec spec = quantSpecOf(g);
    std::string x = inputRows(h.getInput(), h.getInputQuant(), h.getInputScaleAttr());
    g_.setScope("/lm_head");
    if (spec.isInteger() && !qdqTable(g)) {
      if (spec.axis != 1)
        unsupported(h, "table @" + symbol(g) + " is quantized along axis " + std::to_string(spec.axis) +
                           ", the LM head's reduction axis is 1");
      const NBits &n = nbits(g, h);
      g_.setScope("/lm_head");
      return matMulNBits(x, n);
    }
    // Gemm reads the table transposed in place (no [dim, vocab] copy).
    std::string table = spec.isInteger() ? int8Weight(g).dequantized : floatWeight(h.getEmbedding());
    g_.setScope("/lm_head");
    int64_t E = lastDim(h.getInput()), V = lastDim(h.getResult());
    std::string rows = g_.node("Reshape", {x, g_.constI64({-1, E})});
    std::string y = g_.node("Gemm", {rows, table}, {attr("transB", int64_t(1))});
    std::string lead = g_.node("Slice", {g_.node("Shape", {x}), g_.constI64({0}), g_.constI64({-1})});
    std::string shape = g_.node("Concat", {lead, g_.constI64({V})}, {attr("axis", int64_t(0))});
    return g_.node("Reshape", {y, shape});
  }

  /// Rows of an embedding table; quantized tables are gathered packed (the
  /// LM head's MatMulNBits tensors, shared) and dequantized per row.
  std::string embedding(EmbeddingOp e) {
    GlobalOp g = global(e.getTable());
    setScopeFromWeight(g);
    std::string ids = name(e.getIds());
    if (ids == positions_) // padding (-1) reads position 0's row
      ids = g_.node("Max", {ids, g_.scalarI64(0)});
    QuantSpec spec = quantSpecOf(g);
    if (!spec.isInteger()) {
      std::string table = storedWeight(g);
      setScopeFromWeight(g);
      std::string rows = g_.node("Gather", {table, ids});
      if (storedFloatType(g, spec) != TensorProto::FLOAT)
        rows = g_.node("Cast", {rows}, {attr("to", int64_t(TensorProto::FLOAT))});
      return rows;
    }
    if (spec.axis != 1)
      unsupported(e, "table @" + symbol(g) + " is quantized along axis " + std::to_string(spec.axis) +
                         " (a table's rows are its channels: axis 1)");
    if (qdqTable(g)) { // int8 rows times their scales
      const Int8 &w = int8Weight(g);
      setScopeFromWeight(g);
      std::string rows = g_.node("Cast", {g_.node("Gather", {w.q, ids})}, {attr("to", int64_t(TensorProto::FLOAT))});
      std::string scales = g_.node("Unsqueeze", {g_.node("Gather", {w.scales, ids}), g_.constI64({-1})});
      return g_.node("Mul", {rows, scales});
    }
    const NBits &n = nbits(g, e);
    setScopeFromWeight(g);
    auto unpack = [&](const std::string &bytes) { // uint8 [..., m] -> float [..., m * 8 / bits]
      if (n.bits == 8)
        return g_.node("Cast", {bytes}, {attr("to", int64_t(TensorProto::FLOAT))});
      std::string wide = g_.node("Cast", {bytes}, {attr("to", int64_t(TensorProto::INT32))});
      std::string sixteen = g_.scalarI32(16);
      std::string lo = g_.node("Unsqueeze", {g_.node("Mod", {wide, sixteen}), g_.constI64({-1})});
      std::string hi = g_.node("Unsqueeze", {g_.node("Div", {wide, sixteen}), g_.constI64({-1})});
      std::string pairs = g_.node("Concat", {lo, hi}, {attr("axis", int64_t(-1))});
      // [..., m, 2] -> [..., 2m]: merge the last two axes.
      std::string shape = g_.node("Concat", {g_.node("Slice", {g_.node("Shape", {pairs}), g_.constI64({0}), g_.constI64({-2})}),
                                             g_.constI64({-1})},
                                  {attr("axis", int64_t(0))});
      return g_.node("Cast", {g_.node("Reshape", {pairs, shape})}, {attr("to", int64_t(TensorProto::FLOAT))});
    };
    std::string values = unpack(g_.node("Gather", {n.B, ids})); // [B, S, kBlocks, block]
    std::string scales = g_.node("Unsqueeze", {g_.node("Gather", {n.scales, ids}), g_.constI64({-1})});
    std::string zero;
    if (n.zeroPoints.empty()) {
      zero = g_.scalarF32(float(int64_t(1) << (n.bits - 1)));
    } else {
      std::string z = unpack(g_.node("Gather", {n.zeroPoints, ids})); // [B, S, >= kBlocks]
      z = g_.node("Slice", {z, g_.constI64({0}), g_.constI64({n.kBlocks}), g_.constI64({-1})});
      zero = g_.node("Unsqueeze", {z, g_.constI64({-1})});
    }
    std::string rows = g_.node("Mul", {g_.node("Sub", {values, zero}), scales});
    rows = g_.node("Reshape", {rows, g_.constI64({0, 0, n.kBlocks * n.blockSize})});
    if (n.kBlocks * n.blockSize != n.K)
      rows = g_.node("Slice", {rows, g_.constI64({0}), g_.constI64({n.K}), g_.constI64({-1})});
    return rows;
  }

  /// Scores with hidden cache slots at -inf (kiln.causal_mask).
  std::string masked(const std::string &mask, const std::string &scores) {
    return g_.node("Where", {mask, g_.scalarF32(-std::numeric_limits<float>::infinity()), scores});
  }
  std::string softmax(const std::string &x) { return g_.node("Softmax", {x}, {attr("axis", int64_t(-1))}); }

  std::string transposeLast2(const std::string &x, size_t rank) {
    std::vector<int64_t> perm;
    for (size_t i = 0; i < rank; ++i)
      perm.push_back(int64_t(i));
    std::swap(perm[rank - 1], perm[rank - 2]);
    return g_.node("Transpose", {x}, {attr("perm", perm)});
  }

  void lower(Operation &op) {
    llvm::TypeSwitch<Operation *>(&op)
        .Case<WeightOp>([](auto) {}) // lowered at their uses
        .Case<func::ReturnOp>([&](func::ReturnOp r) {
          for (unsigned i = 0; i < r.getNumOperands(); ++i) {
            std::string n = name(r.getOperand(i));
            if (n != outputs_[i]) {
              g_.setScope("/outputs");
              g_.nodeTo(outputs_[i], "Identity", {n});
            }
          }
        })
        .Case<EmbeddingOp>([&](EmbeddingOp e) { define(e.getResult(), embedding(e)); })
        .Case<AddOp>([&](AddOp a) {
          setBlockScope();
          define(a.getResult(), g_.node("Add", {name(a.getLhs()), name(a.getRhs())}));
        })
        .Case<LayerNormOp>([&](LayerNormOp ln) {
          std::string x = name(ln.getInput()), gamma = floatWeight(ln.getGamma()), beta = floatWeight(ln.getBeta());
          setScopeFromWeight(global(ln.getGamma()));
          define(ln.getResult(), g_.node("LayerNormalization", {x, gamma, beta},
                                         {attr("axis", int64_t(-1)),
                                          attr("epsilon", float(ln.getEpsilon().convertToDouble()))}));
        })
        .Case<ResidualLayerNormOp>([&](ResidualLayerNormOp rl) {
          std::string gamma = floatWeight(rl.getGamma()), beta = floatWeight(rl.getBeta());
          setScopeFromWeight(global(rl.getGamma()));
          std::string sum = g_.node("Add", {name(rl.getInput()), name(rl.getResidual())});
          define(rl.getSum(), sum);
          define(rl.getNormalized(), g_.node("LayerNormalization", {names_[rl.getSum()], gamma, beta},
                                             {attr("axis", int64_t(-1)),
                                              attr("epsilon", float(rl.getEpsilon().convertToDouble()))}));
        })
        .Case<LinearOp>([&](LinearOp l) { define(l.getResult(), linear(l)); })
        .Case<LMHeadOp>([&](LMHeadOp h) { define(h.getResult(), lmHead(h)); })
        .Case<GeluOp>([&](GeluOp ge) {
          setBlockScope("mlp");
          define(ge.getResult(), gelu(name(ge.getInput()), ge.getApproximation()));
        })
        .Case<SplitOp>([&](SplitOp s) {
          setBlockScope("attn");
          std::vector<int64_t> sizes;
          for (Value r : s.getResults())
            sizes.push_back(lastDim(r));
          auto outs = g_.nodeN("Split", {name(s.getInput()), g_.constI64(sizes)}, int(sizes.size()),
                               {attr("axis", int64_t(-1))});
          for (size_t i = 0; i < outs.size(); ++i)
            define(s.getResult(unsigned(i)), outs[i]);
        })
        .Case<SplitHeadsOp>([&](SplitHeadsOp s) {
          setBlockScope("attn");
          auto shape = shapeOf(s.getResult());
          std::string r = g_.node("Reshape", {name(s.getInput()), g_.constI64({0, 0, shape[1], shape[3]})});
          define(s.getResult(), g_.node("Transpose", {r}, {attr("perm", std::vector<int64_t>{0, 2, 1, 3})}));
        })
        .Case<MergeHeadsOp>([&](MergeHeadsOp m) {
          setBlockScope("attn");
          std::string t = g_.node("Transpose", {name(m.getInput())}, {attr("perm", std::vector<int64_t>{0, 2, 1, 3})});
          define(m.getResult(), g_.node("Reshape", {t, g_.constI64({0, 0, lastDim(m.getResult())})}));
        })
        .Case<CacheUpdateOp>([&](CacheUpdateOp c) {
          if (!isCache(c.getCache()))
            unsupported(c, "the cache operand is not a KV cache argument");
          setBlockScope("attn");
          std::string update = name(c.getUpdate());
          if (c.getFormat() == CacheFormat::int8) {
            iface_.kvInt8 = true;
            update = quantizeRows(update, lastDim(c.getUpdate()), 0.0f);
          }
          define(c.getResult(),
                 g_.node("CtxScatter", {name(c.getCache()), positions_, update}, {}, kQualcommDomain));
        })
        .Case<MatMulOp>([&](MatMulOp m) {
          bool t = bool(m.getTransposeRhs());
          setBlockScope("attn");
          std::string rhs = isCache(m.getRhs()) ? gatherCache(m.getRhs(), /*values=*/!t) : name(m.getRhs());
          setBlockScope("attn");
          if (t)
            rhs = transposeLast2(rhs, shapeOf(m.getRhs()).size());
          define(m.getResult(), g_.node("MatMul", {name(m.getLhs()), rhs}));
        })
        .Case<ScaleOp>([&](ScaleOp s) {
          setBlockScope("attn");
          define(s.getResult(),
                 g_.node("Mul", {name(s.getInput()), g_.scalarF32(float(s.getFactor().convertToDouble()))}));
        })
        .Case<CausalMaskOp>([&](CausalMaskOp c) {
          std::string m = mask();
          setBlockScope("attn");
          define(c.getResult(), masked(m, name(c.getScores())));
        })
        .Case<SoftmaxOp>([&](SoftmaxOp s) {
          setBlockScope("attn");
          define(s.getResult(), softmax(name(s.getInput())));
        })
        .Case<AttentionOp>([&](AttentionOp a) {
          if (!isCache(a.getKeyCache()) || !isCache(a.getValueCache()))
            unsupported(a, "attention whose caches are not KV cache arguments");
          std::string m = mask();
          std::string k = gatherCache(a.getKeyCache(), false), v = gatherCache(a.getValueCache(), true);
          setBlockScope("attn");
          std::string scores = g_.node("MatMul", {name(a.getQuery()), transposeLast2(k, 4)});
          scores = g_.node("Mul", {scores, g_.scalarF32(float(a.getScale().convertToDouble()))});
          define(a.getResult(), g_.node("MatMul", {softmax(masked(m, scores)), v}));
        })
        .Case<SelectLastOp>([&](SelectLastOp s) {
          g_.setScope("/select_last");
          std::string pos = g_.node("Cast", {positions_}, {attr("to", int64_t(TensorProto::INT32))});
          std::string last = g_.node("ArgMax", {pos}, {attr("axis", int64_t(1)), attr("keepdims", int64_t(1))});
          std::string index = g_.node("Unsqueeze", {last, g_.constI64({-1})});
          define(s.getResult(), g_.node("GatherND", {name(s.getInput()), index}, {attr("batch_dims", int64_t(1))}));
        })
        .Default([&](Operation *other) { unsupported(other, "no ONNX lowering"); });
  }

  ModuleOp module_;
  GraphBuilder &g_;
  func::FuncOp func_;
  GraphInterface iface_;
  std::unique_ptr<Checkpoint> checkpoint_;
  llvm::DenseMap<Value, std::string> names_, outputOf_;
  std::vector<std::string> outputs_;
  std::map<Operation *, std::string> floats_, stored_;
  std::map<Operation *, Int8> int8_;
  std::map<Operation *, NBits> nbits_;
  std::map<int32_t, int64_t> floatBytes_;
  std::string positions_, firstCache_, block_;
  std::string ctxLen_, ctxRange_, mask_, ctxIndices_, invalidValues_;
};

} // namespace

GraphInterface lowerToONNX(ModuleOp module, GraphBuilder &builder) { return Lowering(module, builder).run(); }

} // namespace kiln::onnxb
