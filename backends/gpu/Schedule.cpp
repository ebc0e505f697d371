//===- Schedule.cpp - kiln graph functions as GPU dispatch lists ----------===//
#include "Schedule.h"

#include "kiln/Backend/MemoryPlan.h"
#include "kiln/Backend/ModelSection.h"
#include "kiln/Frontend/Checkpoint.h"
#include "kiln/IR/KilnOps.h"
#include "kiln/Interpreter/Interpreter.h"
#include "kiln/Quant/Quant.h"
#include "kiln/Support/Error.h"
#include "kiln/Support/Float16.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/TypeSwitch.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <sstream>

using namespace mlir;

namespace kiln::gpu {

namespace {

int64_t numElements(Type t) { return cast<RankedTensorType>(t).getNumElements(); }
ArrayRef<int64_t> shapeOf(Value v) { return cast<RankedTensorType>(v.getType()).getShape(); }
int64_t lastDim(Value v) { return shapeOf(v).back(); }
int64_t rows(Value v) { return numElements(v.getType()) / lastDim(v); }
std::string str(int64_t v) { return std::to_string(v); }
uint32_t ceilDiv(int64_t a, int64_t b) { return uint32_t((a + b - 1) / b); }

/// A double as an MLIR float literal that round-trips (e.g. 1.000000e-05).
std::string floatLiteral(double v) {
  std::ostringstream os;
  os.precision(17);
  os << std::scientific << v;
  return os.str();
}

/// One chunk of a weight's rows, in its own buffer.
struct WeightChunk {
  std::vector<int> buffers; ///< data, then (integer formats) scales and zeros
  int64_t row0, rows;
};

struct EncodedWeight {
  std::map<std::string, std::string> params; ///< W_FORMAT, ... (KernelLibrary.cpp's WLOAD)
  std::vector<WeightChunk> chunks;
};

class Scheduler {
public:
  Scheduler(ModuleOp module, const Profile &profile, uint64_t maxBinding, ArtifactWriter &writer, std::string who)
      : module_(module), profile_(profile), maxBinding_(maxBinding), writer_(writer), who_(std::move(who)) {}

  Program run() {
    std::vector<func::FuncOp> funcs(module_.getOps<func::FuncOp>().begin(), module_.getOps<func::FuncOp>().end());
    if (funcs.empty())
      throw Error(who_ + ": the module has no graph functions");
    // The shared buffers, sized for the largest function.
    func::FuncOp first = funcs.front();
    int64_t maxTokens = 0, vocab = 0;
    for (auto f : funcs) {
      maxTokens = std::max(maxTokens, shapeOf(f.getArgument(0))[1]);
      vocab = lastDim(cast<func::ReturnOp>(f.getBody().front().getTerminator()).getOperand(0));
    }
    arena_ = addBuffer("arena", "arena", 0);
    ids_ = addBuffer("input_ids", "input_ids", uint64_t(maxTokens) * 4);
    positions_ = addBuffer("position_ids", "position_ids", uint64_t(maxTokens) * 4);
    logits_ = addBuffer("logits", "logits", uint64_t(vocab) * 4);
    // The KV caches: f32 values, or (kiln-quantize-kv-cache) int8 values four to a word and a
    // buffer of scales, one per head and position.
    int8Cache_ = kvCacheFormat(module_, who_) == "int8";
    for (unsigned a = 2; a < first.getNumArguments(); ++a) {
      bool key = a % 2 == 0;
      int64_t layer = (a - 2) / 2;
      auto shape = shapeOf(first.getArgument(a));
      if (int8Cache_ && shape.back() % 4)
        throw Error(who_ + ": the int8 KV cache needs a head size that is a multiple of 4, not " + str(shape.back()));
      uint64_t values = uint64_t(numElements(first.getArgument(a).getType()));
      std::string kv = key ? "key" : "value";
      int b = addBuffer(kv + "_cache." + str(layer), kv + "_cache", int8Cache_ ? values : values * 4);
      program_.buffers[size_t(b)].layer = layer;
      caches_.push_back(b);
      if (int8Cache_) {
        int sb = addBuffer(kv + "_scales." + str(layer), kv + "_scales", values / uint64_t(shape.back()) * 4);
        program_.buffers[size_t(sb)].layer = layer;
        cacheScales_[b] = sb;
      }
    }
    // W8A8 / W4A8: one buffer for the quantized copy of a linear's input rows (ops run in turn).
    uint64_t quantBytes = 0;
    module_.walk([&](Operation *op) {
      auto l = dyn_cast<LinearOp>(op);
      auto h = dyn_cast<LMHeadOp>(op);
      if ((l && l.getInputQuant()) || (h && h.getInputQuant()))
        quantBytes = std::max<uint64_t>(quantBytes, uint64_t(numElements(op->getOperand(0).getType())) * 4);
    });
    if (quantBytes)
      quantized_ = addBuffer("quantized_input", "scratch", quantBytes);
    argmaxChunk_ = profile_.workgroupSize * 16;
    argmaxParts_ = (vocab + argmaxChunk_ - 1) / argmaxChunk_;
    argmaxValues_ = addBuffer("argmax_values", "argmax_values", uint64_t(argmaxParts_) * 4);
    argmaxIds_ = addBuffer("argmax_ids", "argmax_ids", uint64_t(argmaxParts_) * 4);
    nextId_ = addBuffer("next_id", "next_id", 4);
    vocab_ = vocab;

    uint64_t arenaBytes = 0;
    for (auto f : funcs) {
      if (f.getNumArguments() != first.getNumArguments())
        throw Error(who_ + ": the graph functions disagree on their KV caches");
      GraphSchedule g = scheduleFunction(f);
      arenaBytes = std::max(arenaBytes, g.arenaBytes);
      program_.graphs.push_back(std::move(g));
    }
    if (arenaBytes > maxBinding_)
      throw Error(who_ + ": the activations need " + str(int64_t(arenaBytes)) + " bytes, more than the " +
                  str(int64_t(maxBinding_)) + "-byte storage buffers of the target (a shorter --prompt-len needs less)");
    program_.buffers[size_t(arena_)].bytes = std::max<uint64_t>(arenaBytes, 4);
    for (const auto &b : program_.buffers)
      if (b.bytes > maxBinding_ && b.role != "weight")
        throw Error(who_ + ": buffer " + b.name + " needs " + str(int64_t(b.bytes)) + " bytes, more than the " +
                    str(int64_t(maxBinding_)) + "-byte storage buffers of the target");
    return std::move(program_);
  }

private:
  int addBuffer(const std::string &name, const std::string &role, uint64_t bytes) {
    program_.buffers.push_back({name, role, std::max<uint64_t>(bytes, 4), 0, -1});
    return int(program_.buffers.size()) - 1;
  }

  [[noreturn]] void unsupported(Operation *op, const std::string &why) {
    throw Error(who_ + ": cannot lower '" + op->getName().getStringRef().str() + "': " + why);
  }

  //===--------------------------------------------------------------------===//
  // Weights
  //===--------------------------------------------------------------------===//

  /// A weight as the kernels read it: `plain` (biases, layer-norm parameters) as f32 values
  /// in one buffer; otherwise a matrix in its storage format (the WLOAD macro of
  /// KernelLibrary.cpp: f32, f16 / bf16 two to a 32-bit word, int8 / int4 four / eight to a
  /// word with f32 scales and zero points), split by rows into chunks when `splittable` and
  /// larger than a binding.
  const EncodedWeight &weight(Operation *user, Value weight, bool splittable, bool plain) {
    GlobalOp global = globalOf(weight);
    if (!global)
      unsupported(user, "a weight operand that is not a kiln.weight");
    auto key = std::make_pair(global.getOperation(), plain);
    auto it = weights_.find(key);
    if (it != weights_.end())
      return it->second;
    std::string name = global.getSymName().str();
    QuantSpec spec = quantSpecOf(global);
    auto shape = cast<RankedTensorType>(global.getType()).getShape();
    EncodedWeight enc;
    if (plain || shape.size() != 2) {
      if (spec.isInteger())
        unsupported(user, "weight @" + name + " is " + spec.name() + " but is read as f32 values");
      std::vector<double> values = readEffectiveGlobalValues(global, checkpoint_);
      std::vector<float> data(values.begin(), values.end());
      if (data.size() * 4 > maxBinding_)
        unsupported(user, "weight @" + name + " is larger than the target's storage buffers");
      enc.chunks.push_back({{addWeightBuffer(name, "rowmajor", "f32", shape, data.data(), data.size() * 4, "")}, 0, 1});
      enc.params["W_FORMAT"] = "f32";
      return weights_[key] = std::move(enc);
    }
    int64_t R = shape[0], C = shape[1];
    std::string format = spec.format == WeightFormat::F32    ? "f32"
                         : spec.format == WeightFormat::F16  ? "f16"
                         : spec.format == WeightFormat::BF16 ? "bf16"
                         : spec.format == WeightFormat::Int8 ? "q8"
                                                             : "q4";
    int64_t perWord = format == "f32" ? 1 : format == "q8" ? 4 : format == "q4" ? 8 : 2;
    int64_t words = (C + perWord - 1) / perWord; // per row
    enc.params["W_FORMAT"] = format;
    if (format == "f32")
      enc.params["W_COLS"] = str(C);
    else
      enc.params["W_WORDS"] = str(words);
    // The row-major storage words, and for integers the [channel][group] scales and zeros.
    std::vector<uint32_t> packed(size_t(R * words), 0);
    std::vector<float> f32Values, scales, zeros;
    int64_t groups = 1;
    bool axis0 = spec.axis == 0;
    if (format == "q8" || format == "q4") {
      std::vector<double> raw = readGlobalValues(global, checkpoint_);
      std::vector<float> w(raw.begin(), raw.end());
      QuantizedMatrix m = quantizeMatrix(w.data(), R, C, spec);
      groups = m.groups;
      int64_t length = axis0 ? R : C;
      enc.params["W_GROUPS"] = str(groups);
      enc.params["W_GROUP"] = str(spec.groupSize > 0 ? spec.groupSize : length);
      enc.params["W_AXIS"] = axis0 ? "0" : "1";
      enc.params["W_SIGNED"] = format == "q8" || spec.symmetric ? "true" : "false";
      int bits = format == "q8" ? 8 : 4;
      for (int64_t r = 0; r < R; ++r)
        for (int64_t c = 0; c < C; ++c) {
          uint32_t v = uint32_t(uint8_t(m.q[size_t(r * C + c)])) & ((1u << bits) - 1);
          packed[size_t(r * words + c / perWord)] |= v << (bits * (c % perWord));
        }
      scales = m.scale;
      zeros.assign(m.zero.begin(), m.zero.end());
    } else {
      std::vector<double> values = readEffectiveGlobalValues(global, checkpoint_);
      if (format == "f32")
        f32Values.assign(values.begin(), values.end());
      else
        for (int64_t r = 0; r < R; ++r)
          for (int64_t c = 0; c < C; ++c) {
            float v = float(values[size_t(r * C + c)]);
            uint32_t bits = format == "f16" ? floatToHalf(v) : floatToBf16(v);
            packed[size_t(r * words + c / 2)] |= bits << (16 * (c % 2));
          }
    }
    uint64_t rowBytes = uint64_t(words) * 4;
    int64_t rowsPerChunk = R;
    if (uint64_t(R) * rowBytes > maxBinding_) {
      if (!splittable)
        unsupported(user, "weight @" + name + " is " + str(int64_t(uint64_t(R) * rowBytes)) +
                              " bytes, more than the target's " + str(int64_t(maxBinding_)) +
                              "-byte storage buffers (only embedding tables are split)");
      if (!scales.empty() && axis0)
        unsupported(user, "weight @" + name + " is too large for one storage buffer and quantized along its rows");
      rowsPerChunk = int64_t(maxBinding_ / rowBytes);
    }
    for (int64_t row0 = 0, n = 0; row0 < R; row0 += rowsPerChunk, ++n) {
      int64_t count = std::min(rowsPerChunk, R - row0);
      std::string tag = rowsPerChunk == R ? "" : "[" + str(n) + "]";
      std::string layout = rowsPerChunk == R ? "" : " rows[" + str(row0) + ":" + str(row0 + count) + "]";
      WeightChunk chunk{{}, row0, count};
      if (format == "f32")
        chunk.buffers.push_back(addWeightBuffer(name, "rowmajor" + layout, "f32", shape,
                                                f32Values.data() + row0 * C, uint64_t(count * C) * 4, tag));
      else
        chunk.buffers.push_back(addWeightBuffer(name, "rowmajor-" + format + "-words" + layout, "u32", shape,
                                                packed.data() + row0 * words, uint64_t(count) * rowBytes, tag));
      if (!scales.empty()) {
        // Channel-major [channel][group]: along axis 1 the channels are this chunk's rows.
        int64_t s0 = axis0 ? 0 : row0 * groups, sn = axis0 ? int64_t(scales.size()) : count * groups;
        chunk.buffers.push_back(addWeightBuffer(name, "scales" + layout, "f32", {}, scales.data() + s0,
                                                uint64_t(sn) * 4, tag + ".scales"));
        chunk.buffers.push_back(addWeightBuffer(name, "zeros" + layout, "f32", {}, zeros.data() + s0,
                                                uint64_t(sn) * 4, tag + ".zeros"));
      }
      enc.chunks.push_back(std::move(chunk));
    }
    return weights_[key] = std::move(enc);
  }

  int addWeightBuffer(const std::string &name, const std::string &layout, const std::string &dtype,
                      ArrayRef<int64_t> shape, const void *data, uint64_t bytes, const std::string &tag) {
    WeightEntry entry;
    entry.name = name;
    entry.layout = layout;
    entry.dtype = dtype;
    entry.shape.assign(shape.begin(), shape.end());
    entry.bytes = bytes;
    uint64_t offset = writer_.addWeight(entry, data);
    int b = addBuffer("weight:" + name + tag, "weight", bytes);
    program_.buffers[size_t(b)].fileOffset = offset;
    return b;
  }

  /// The bindings of a matrix weight's chunk: its data, then any scales and zero points.
  std::vector<Binding> chunkBindings(const WeightChunk &c) {
    std::vector<Binding> out;
    for (int b : c.buffers)
      out.push_back(whole(b));
    return out;
  }

  /// A bias of zeros for a linear without one.
  int zeroBias(int64_t n) {
    auto it = zeroBiases_.find(n);
    if (it != zeroBiases_.end())
      return it->second;
    std::vector<float> zeros(size_t(n), 0.0f);
    return zeroBiases_[n] = addWeightBuffer("zero_bias." + str(n), "rowmajor", "f32", {n}, zeros.data(),
                                            uint64_t(n) * 4, "");
  }

  //===--------------------------------------------------------------------===//
  // Bindings
  //===--------------------------------------------------------------------===//

  int bufferOf(const Place &p) {
    switch (p.buffer) {
    case kArenaBuffer:
      return arena_;
    case kInputIdsBuffer:
      return ids_;
    case kPositionsBuffer:
      return positions_;
    case kLogitsBuffer:
      return logits_;
    default:
      return caches_.at(size_t(p.buffer - kFirstCacheBuffer));
    }
  }

  /// The binding of activation `v` from its place, aligned down; `remainder`
  /// gets the elements between the binding's start and the value's.
  Binding bind(Value v, int64_t *remainder = nullptr) {
    const Place &p = places_.at(v);
    if (p.buffer == kWeightsBuffer)
      return bindWeight(v.getDefiningOp(), v);
    uint64_t byteOffset = uint64_t(p.offset) * 4;
    uint64_t aligned = byteOffset / kBindingAlignment * kBindingAlignment;
    int64_t rem = int64_t(byteOffset - aligned) / 4;
    if (remainder)
      *remainder = rem;
    else if (rem != 0)
      throw Error(who_ + ": internal: an unaligned binding for a kernel without an offset");
    int buffer = bufferOf(p);
    uint64_t end = program_.buffers[size_t(buffer)].bytes;
    if (p.buffer == kArenaBuffer) {
      const Place &root = places_.at(p.root);
      end = uint64_t(root.offset + numElements(p.root.getType())) * 4;
    }
    return {buffer, aligned, end - aligned};
  }
  /// A bias or layer-norm parameter: f32 values in one buffer.
  Binding bindWeight(Operation *user, Value w) { return whole(weight(user, w, false, true).chunks.front().buffers.front()); }
  static std::map<std::string, std::string> with(std::map<std::string, std::string> a,
                                                 const std::map<std::string, std::string> &b) {
    a.insert(b.begin(), b.end());
    return a;
  }
  Binding whole(int buffer) { return {buffer, 0, program_.buffers[size_t(buffer)].bytes}; }

  /// A product's input: as it is, or (W8A8, W4A8: `input_quant`) each row replaced by what its
  /// int8 quantization stands for, in the scratch buffer, by a quantize_rows dispatch first.
  Binding quantizedInput(GraphSchedule &g, Operation *op, Value input, std::optional<InputQuantization> mode,
                         std::optional<APFloat> scale) {
    if (!mode)
      return bind(input);
    double fixed = *mode == InputQuantization::Static ? double(float(scale->convertToDouble())) : 0.0;
    int k = kernel("elementwise.mlir", "quantize_rows", {{"K", str(lastDim(input))}, {"SCALE", floatLiteral(fixed)}});
    Binding out = whole(quantized_);
    dispatch(g, op, k, {bind(input), out}, {uint32_t(rows(input)), 1, 1});
    return out;
  }

  /// A KV cache's bindings: its values, and for an int8 cache its scales.
  std::vector<Binding> cacheBindings(Value cache) {
    Binding data = bind(cache);
    if (!int8Cache_)
      return {data};
    return {data, whole(cacheScales_.at(data.buffer))};
  }

  void requireDense(Operation *op, Value v) {
    if (places_.at(v).rowStride != lastDim(v))
      unsupported(op, "the GPU kernels need dense operands here");
  }

  int kernel(const std::string &file, const std::string &function, std::map<std::string, std::string> params) {
    std::ostringstream key;
    key << file << "/" << function;
    for (const auto &[k, v] : params)
      key << ";" << k << "=" << v;
    auto it = kernelIndex_.find(key.str());
    if (it != kernelIndex_.end())
      return it->second;
    int index = int(program_.kernels.size());
    std::string suffix = "_" + str(index);
    program_.kernels.push_back({file, std::move(params), suffix, function});
    program_.entries.push_back(function + suffix);
    return kernelIndex_[key.str()] = index;
  }

  /// Appends a dispatch computing `what` (the kiln op's name, for diagnostics).
  void dispatch(GraphSchedule &g, const std::string &what, int kernelIndex, std::vector<Binding> bindings,
                std::array<uint32_t, 3> groups) {
    for (const auto &b : bindings)
      program_.maxBindingBytes = std::max(program_.maxBindingBytes, b.bytes);
    g.dispatches.push_back({kernelIndex, std::move(bindings), groups, what});
  }
  void dispatch(GraphSchedule &g, Operation *op, int kernelIndex, std::vector<Binding> bindings,
                std::array<uint32_t, 3> groups) {
    dispatch(g, op->getName().getStringRef().str(), kernelIndex, std::move(bindings), groups);
  }

  //===--------------------------------------------------------------------===//
  // Ops
  //===--------------------------------------------------------------------===//

  GraphSchedule scheduleFunction(func::FuncOp func) {
    MemoryPlan plan = planMemory(func, who_, int64_t(kBindingAlignment));
    places_ = std::move(plan.places);
    GraphSchedule g;
    g.name = func.getSymName().str();
    g.tokens = shapeOf(func.getArgument(0))[1];
    g.arenaBytes = plan.arenaBytes;
    uint32_t wg = uint32_t(profile_.workgroupSize);
    for (Operation &op : func.getBody().front()) {
      llvm::TypeSwitch<Operation *>(&op)
          .Case<WeightOp, SplitOp, SplitHeadsOp, MergeHeadsOp, func::ReturnOp>([](auto) {})
          .Case<EmbeddingOp>([&](EmbeddingOp e) {
            int64_t E = lastDim(e.getResult()), S = rows(e.getResult());
            const EncodedWeight &table = weight(e, e.getTable(), true, false);
            for (const auto &c : table.chunks) {
              int k = kernel("embedding.mlir", "embedding",
                             with({{"E", str(E)}, {"ROW0", str(c.row0)}, {"ROWS", str(c.rows)},
                                   {"FIRST", c.row0 == 0 ? "true" : "false"}},
                                  table.params));
              std::vector<Binding> b = {whole(bufferOf(places_.at(e.getIds())))};
              for (const Binding &w : chunkBindings(c))
                b.push_back(w);
              b.push_back(bind(e.getResult()));
              dispatch(g, e, k, b, {ceilDiv(E, wg), uint32_t(S), 1});
            }
          })
          .Case<LayerNormOp>([&](LayerNormOp ln) {
            requireDense(ln, ln.getInput());
            int k = kernel("layer_norm.mlir", "layer_norm",
                           {{"N", str(lastDim(ln.getInput()))}, {"EPS", floatLiteral(ln.getEpsilon().convertToDouble())}});
            dispatch(g, ln, k,
                     {bind(ln.getInput()), bindWeight(ln, ln.getGamma()), bindWeight(ln, ln.getBeta()), bind(ln.getResult())},
                     {uint32_t(rows(ln.getInput())), 1, 1});
          })
          .Case<ResidualLayerNormOp>([&](ResidualLayerNormOp rl) {
            requireDense(rl, rl.getInput());
            requireDense(rl, rl.getResidual());
            int k = kernel("layer_norm.mlir", "residual_layer_norm",
                           {{"N", str(lastDim(rl.getInput()))}, {"EPS", floatLiteral(rl.getEpsilon().convertToDouble())}});
            dispatch(g, rl, k,
                     {bind(rl.getInput()), bind(rl.getResidual()), bindWeight(rl, rl.getGamma()),
                      bindWeight(rl, rl.getBeta()), bind(rl.getSum()), bind(rl.getNormalized())},
                     {uint32_t(rows(rl.getInput())), 1, 1});
          })
          .Case<LinearOp>([&](LinearOp l) {
            requireDense(l, l.getInput());
            Binding input = quantizedInput(g, l, l.getInput(), l.getInputQuant(), l.getInputScale());
            auto epilogue = l.getGeluEpilogue();
            std::string gelu = !epilogue ? "none" : *epilogue == GeluApproximation::tanh ? "tanh" : "erf";
            int64_t K = lastDim(l.getInput()), N = lastDim(l.getResult());
            const EncodedWeight &w = weight(l, l.getWeight(), false, false);
            int64_t M = rows(l.getInput());
            // Prefill: four rows per thread (the same sums as the one-row kernel's).
            int k = M > 1 ? kernel("linear.mlir", "linear_rows4",
                                   with({{"K", str(K)}, {"N", str(N)}, {"M", str(M)}, {"GELU", gelu}}, w.params))
                          : epilogue ? kernel("linear.mlir", "linear_gelu",
                                              with({{"K", str(K)}, {"N", str(N)}, {"GELU", gelu}}, w.params))
                                     : kernel("linear.mlir", "linear", with({{"K", str(K)}, {"N", str(N)}}, w.params));
            std::vector<Binding> b = {input};
            for (const Binding &wb : chunkBindings(w.chunks.front()))
              b.push_back(wb);
            b.push_back(l.getBias() ? bindWeight(l, l.getBias()) : whole(zeroBias(N)));
            b.push_back(bind(l.getResult()));
            dispatch(g, l, k, b, {ceilDiv(N, wg), M > 1 ? ceilDiv(M, 4) : 1u, 1});
          })
          .Case<AddOp>([&](AddOp a) {
            requireDense(a, a.getLhs());
            requireDense(a, a.getRhs());
            int64_t n = numElements(a.getType());
            int k = kernel("elementwise.mlir", "add", {{"COUNT", str(n)}});
            dispatch(g, a, k, {bind(a.getLhs()), bind(a.getRhs()), bind(a.getResult())}, {ceilDiv(n, wg), 1, 1});
          })
          .Case<GeluOp>([&](GeluOp ge) {
            requireDense(ge, ge.getInput());
            int64_t n = numElements(ge.getType());
            int k = kernel("elementwise.mlir", "gelu",
                           {{"COUNT", str(n)}, {"GELU", ge.getApproximation() == GeluApproximation::tanh ? "tanh" : "erf"}});
            dispatch(g, ge, k, {bind(ge.getInput()), bind(ge.getResult())}, {ceilDiv(n, wg), 1, 1});
          })
          .Case<CacheUpdateOp>([&](CacheUpdateOp c) {
            auto cache = shapeOf(c.getCache());
            int64_t H = cache[1], C = cache[2], D = cache[3], S = shapeOf(c.getUpdate())[2];
            int64_t offset = 0;
            Binding update = bind(c.getUpdate(), &offset);
            if (c.getFormat() == CacheFormat::int8) { // one workgroup per (row, head): a max, then the words
              int k = kernel("attention.mlir", "cache_write_q8",
                             {{"D", str(D)}, {"C", str(C)}, {"DW", str(D / 4)},
                              {"Q_STRIDE", str(places_.at(c.getUpdate()).rowStride)}, {"OFFSET", str(offset)}});
              std::vector<Binding> b = {update, whole(positions_)};
              for (const Binding &cb : cacheBindings(c.getCache()))
                b.push_back(cb);
              dispatch(g, c, k, b, {uint32_t(S), uint32_t(H), 1});
              return;
            }
            int k = kernel("attention.mlir", "cache_write",
                           {{"H", str(H)}, {"D", str(D)}, {"C", str(C)}, {"HD", str(H * D)},
                            {"Q_STRIDE", str(places_.at(c.getUpdate()).rowStride)}, {"OFFSET", str(offset)}});
            dispatch(g, c, k, {update, whole(positions_), bind(c.getCache())}, {ceilDiv(H * D, wg), uint32_t(S), 1});
          })
          .Case<AttentionOp>([&](AttentionOp a) {
            auto q = shapeOf(a.getQuery()), kc = shapeOf(a.getKeyCache());
            int64_t H = q[1], S = q[2], D = q[3], C = kc[2];
            int64_t offset = 0;
            Binding query = bind(a.getQuery(), &offset);
            std::map<std::string, std::string> p = {
                {"H", str(H)}, {"D", str(D)}, {"C", str(C)}, {"Q_STRIDE", str(places_.at(a.getQuery()).rowStride)},
                {"Q_OFFSET", str(offset)}, {"SCALE", floatLiteral(double(float(a.getScale().convertToDouble())))},
                {"KV", int8Cache_ ? "q8" : "f32"}};
            std::vector<Binding> b = {query};
            for (Value cache : {a.getKeyCache(), a.getValueCache()})
              for (const Binding &cb : cacheBindings(cache))
                b.push_back(cb);
            b.push_back(whole(positions_));
            b.push_back(bind(a.getResult()));
            if (S == 1) { // decode: one workgroup per head, the row's scores in workgroup memory
              dispatch(g, a, kernel("attention.mlir", "attention", p), b, {1, uint32_t(H), 1});
              return;
            }
            // Prefill: flash-style, TQ rows per workgroup sharing each staged tile of TK keys.
            int64_t tpr = 16, tq = profile_.workgroupSize / tpr, tk = 16;
            p.insert({{"S", str(S)}, {"TQ", str(tq)}, {"TK", str(tk)}, {"TPR", str(tpr)}, {"TQD", str(tq * D)},
                      {"TKD", str(tk * D)}, {"TQTK", str(tq * tk)}});
            dispatch(g, a, kernel("attention.mlir", "attention_flash", p), b, {ceilDiv(S, tq), uint32_t(H), 1});
          })
          .Case<SelectLastOp>([&](SelectLastOp s) {
            int64_t S = shapeOf(s.getInput())[1], E = lastDim(s.getInput());
            int k = kernel("embedding.mlir", "select_last",
                           {{"S", str(S)}, {"E", str(E)}, {"XS", str(places_.at(s.getInput()).rowStride)}});
            dispatch(g, s, k, {bind(s.getInput()), whole(positions_), bind(s.getResult())}, {ceilDiv(E, wg), 1, 1});
          })
          .Case<LMHeadOp>([&](LMHeadOp h) {
            requireDense(h, h.getInput());
            if (rows(h.getInput()) != 1)
              unsupported(h, "the GPU LM head takes one row (the step's last)");
            Binding input = quantizedInput(g, h, h.getInput(), h.getInputQuant(), h.getInputScale());
            int64_t E = lastDim(h.getInput());
            const EncodedWeight &table = weight(h, h.getEmbedding(), true, false);
            for (const auto &c : table.chunks) {
              int k = kernel("lm_head.mlir", "lm_head",
                             with({{"V", str(c.rows)}, {"V0", str(c.row0)}, {"E", str(E)}}, table.params));
              std::vector<Binding> b = {input};
              for (const Binding &w : chunkBindings(c))
                b.push_back(w);
              b.push_back(bind(h.getResult()));
              dispatch(g, h, k, b, {ceilDiv(c.rows, wg), 1, 1});
            }
          })
          .Default([&](Operation *other) {
            unsupported(other, isa<MatMulOp, SoftmaxOp, CausalMaskOp, ScaleOp>(other)
                                   ? "unfused attention (the GPU backends run kiln-fuse-attention; this block did not match)"
                                   : "no GPU kernel");
          });
    }
    // The greedy pick on the device: a decode step can read back one id.
    int partial = kernel("lm_head.mlir", "argmax_partial", {{"V", str(vocab_)}, {"CHUNK", str(argmaxChunk_)}});
    dispatch(g, "argmax", partial, {whole(logits_), whole(argmaxValues_), whole(argmaxIds_)},
             {uint32_t(argmaxParts_), 1, 1});
    int final = kernel("lm_head.mlir", "argmax_final", {{"PARTS", str(argmaxParts_)}});
    dispatch(g, "argmax", final, {whole(argmaxValues_), whole(argmaxIds_), whole(nextId_)}, {1, 1, 1});
    return g;
  }

  ModuleOp module_;
  const Profile &profile_;
  uint64_t maxBinding_;
  ArtifactWriter &writer_;
  std::string who_;
  Program program_;
  std::unique_ptr<Checkpoint> checkpoint_;
  std::map<std::pair<Operation *, bool>, EncodedWeight> weights_;
  std::map<int64_t, int> zeroBiases_;
  std::map<std::string, int> kernelIndex_;
  DenseMap<Value, Place> places_;
  int arena_ = 0, ids_ = 0, positions_ = 0, logits_ = 0, argmaxValues_ = 0, argmaxIds_ = 0, nextId_ = 0;
  std::vector<int> caches_;
  std::map<int, int> cacheScales_; ///< int8 cache buffer -> its scales buffer
  bool int8Cache_ = false;
  int quantized_ = -1; ///< the scratch buffer of W8A8 / W4A8 inputs
  int64_t vocab_ = 0, argmaxChunk_ = 0, argmaxParts_ = 0;
};

} // namespace

Program schedule(ModuleOp module, const Profile &profile, uint64_t maxBinding, ArtifactWriter &writer,
                 const std::string &who) {
  return Scheduler(module, profile, maxBinding, writer, who).run();
}

std::string programJson(const Program &program) {
  nlohmann::ordered_json j;
  j["program_version"] = 1;
  j["binding_alignment"] = kBindingAlignment;
  j["max_binding_bytes"] = program.maxBindingBytes;
  auto &buffers = j["buffers"] = nlohmann::ordered_json::array();
  for (const auto &b : program.buffers) {
    nlohmann::ordered_json e = {{"name", b.name}, {"role", b.role}, {"bytes", b.bytes}};
    if (b.role == "weight")
      e["file_offset"] = b.fileOffset;
    if (b.layer >= 0)
      e["layer"] = b.layer;
    buffers.push_back(e);
  }
  j["entry_points"] = program.entries;
  for (const auto &g : program.graphs) {
    auto &graph = j["graphs"][g.name];
    graph["tokens"] = g.tokens;
    graph["arena_bytes"] = g.arenaBytes;
    auto &list = graph["dispatches"] = nlohmann::ordered_json::array();
    for (const auto &d : g.dispatches) {
      nlohmann::ordered_json bindings = nlohmann::ordered_json::array();
      for (const auto &b : d.bindings)
        bindings.push_back({b.buffer, b.offset, b.bytes});
      list.push_back({{"op", d.op}, {"kernel", d.kernel}, {"groups", d.groups}, {"bindings", bindings}});
    }
  }
  return j.dump(1) + "\n";
}

} // namespace kiln::gpu
