//===- Importer.cpp - Hugging Face GPT-2 -> kiln IR -----------------------===//
//
// Emits, per specialization (prefill: P tokens, decode: 1 token):
//
//   func.func @prefill(%input_ids: tensor<BxPxi32>, %position_ids: tensor<BxPxi32>,
//                      %past_key_0, %past_value_0, ...: tensor<BxHxCxDxf32>)
//       -> (logits, present_key_0, present_value_0, ...)
//
// Position ids drive everything that depends on where a token is: the
// position embedding, the cache rows written and the causal mask. A slot
// with position id -1 is padding: it writes nothing and sees nothing.
//
//===----------------------------------------------------------------------===//
#include "kiln/Frontend/Importer.h"

#include "kiln/Frontend/Adapter.h"
#include "kiln/IR/Adapters.h"
#include "kiln/IR/KilnOps.h"
#include "kiln/IR/WeightValues.h"
#include "kiln/Support/Error.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"

#include <cctype>
#include <filesystem>
#include <map>
#include <set>

using namespace mlir;

namespace kiln {

namespace {

class GPT2Builder {
public:
  GPT2Builder(MLIRContext &ctx, const Checkpoint &ckpt, const ImportOptions &opts)
      : ctx_(ctx), ckpt_(ckpt), cfg_(ckpt.config()), opts_(opts), b_(&ctx), loc_(UnknownLoc::get(&ctx)) {}

  OwningOpRef<ModuleOp> build() {
    OwningOpRef<ModuleOp> module = ModuleOp::create(loc_);
    std::string dir = std::filesystem::absolute(ckpt_.dir()).lexically_normal().string();
    if (dir.size() > 1 && dir.back() == '/')
      dir.pop_back();
    module->getOperation()->setAttr(kCheckpointAttr, b_.getStringAttr(dir));
    module->getOperation()->setAttr(kConfigAttr, configAttr());
    b_.setInsertionPointToEnd(module->getBody());
    GPT2Config tiedCheck = cfg_;
    tiedCheck.tieWordEmbeddings = ckpt_.tiedLMHead();
    for (const auto &t : expectedTensors(tiedCheck)) {
      auto type = RankedTensorType::get(t.shape, elementType(ckpt_.tensor(t.name).dtype));
      loc_ = NameLoc::get(b_.getStringAttr(t.name));
      b_.create<GlobalOp>(loc_, t.name, type, ElementsAttr(), DictionaryAttr(), DictionaryAttr());
      globals_[t.name] = type;
    }
    if (!opts_.mergeAdapter.empty())
      mergeAdapter(*module);
    if (!opts_.adapters.empty())
      addAdapterSlots(*module);
    buildFunction(*module, "prefill", opts_.promptLen, !opts_.allLogits);
    buildFunction(*module, "decode", 1, true);
    return module;
  }

private:
  Type f32() { return b_.getF32Type(); }
  Type elementType(DType d) {
    return d == DType::F16 ? Type(b_.getF16Type()) : d == DType::BF16 ? Type(b_.getBF16Type()) : f32();
  }
  RankedTensorType act(ArrayRef<int64_t> shape) { return RankedTensorType::get(shape, f32()); }

  DictionaryAttr configAttr() {
    auto i = [&](int64_t v) { return b_.getI64IntegerAttr(v); };
    SmallVector<NamedAttribute> attrs = {
        b_.getNamedAttr("vocab_size", i(cfg_.vocabSize)),
        b_.getNamedAttr("n_positions", i(cfg_.nPositions)),
        b_.getNamedAttr("n_embd", i(cfg_.nEmbd)),
        b_.getNamedAttr("n_layer", i(cfg_.nLayer)),
        b_.getNamedAttr("n_head", i(cfg_.nHead)),
        b_.getNamedAttr("n_inner", i(cfg_.innerDim())),
        b_.getNamedAttr("layer_norm_epsilon", b_.getF64FloatAttr(cfg_.layerNormEpsilon)),
        b_.getNamedAttr("activation_function", b_.getStringAttr(cfg_.activation)),
        b_.getNamedAttr("tie_word_embeddings", b_.getBoolAttr(ckpt_.tiedLMHead())),
        b_.getNamedAttr("bos_token_id", i(cfg_.bosTokenId)),
        b_.getNamedAttr("eos_token_id", i(cfg_.eosTokenId)),
        b_.getNamedAttr("batch", i(opts_.batch)),
        b_.getNamedAttr("prompt_len", i(opts_.promptLen)),
        b_.getNamedAttr("ctx_len", i(opts_.ctxLen)),
    };
    return b_.getDictionaryAttr(attrs);
  }

  Value weight(const std::string &name) {
    return b_.create<WeightOp>(NameLoc::get(b_.getStringAttr(name)), globals_.at(name), name);
  }

  Value layerNorm(Value x, const std::string &prefix) {
    return b_.create<LayerNormOp>(loc_, x.getType(), x, weight(prefix + ".weight"), weight(prefix + ".bias"),
                                  b_.getF64FloatAttr(cfg_.layerNormEpsilon));
  }

  Value linear(Value x, const std::string &prefix) {
    Value w = weight(prefix + ".weight");
    auto xs = cast<RankedTensorType>(x.getType()).getShape();
    SmallVector<int64_t> shape(xs.begin(), xs.end());
    shape.back() = cast<RankedTensorType>(w.getType()).getShape()[1];
    Value y = b_.create<LinearOp>(loc_, act(shape), x, w, weight(prefix + ".bias"), GeluApproximationAttr(),
                                  InputQuantizationAttr(), FloatAttr());
    if (!globals_.count(prefix + ".lora_A"))
      return y;
    // The switchable low-rank branch: (x lora_A) lora_B, beside the base linear.
    SmallVector<int64_t> mid(xs.begin(), xs.end());
    mid.back() = globals_.at(prefix + ".lora_A").getShape()[1];
    Value t = b_.create<LinearOp>(loc_, act(mid), x, weight(prefix + ".lora_A"), Value(), GeluApproximationAttr(),
                                  InputQuantizationAttr(), FloatAttr());
    Value d = b_.create<LinearOp>(loc_, act(shape), t, weight(prefix + ".lora_B"), Value(), GeluApproximationAttr(),
                                  InputQuantizationAttr(), FloatAttr());
    return b_.create<AddOp>(loc_, y, d);
  }

  /// W += scale (B A)^T for every linear the adapter changes, as inline values.
  void mergeAdapter(ModuleOp module) {
    LoraAdapter a = LoraAdapter::open(opts_.mergeAdapter, cfg_);
    for (const LoraFactors &f : a.modules) {
      std::string name = f.module + ".weight";
      auto global = module.lookupSymbol<GlobalOp>(name);
      const TensorView &base = ckpt_.tensor(name);
      std::vector<double> delta = a.convDelta(f);
      std::vector<float> merged(delta.size());
      for (size_t i = 0; i < merged.size(); ++i)
        merged[i] = float(base.at(i) + delta[i]);
      setInlineValues(global, base.shape, merged);
      globals_[name] = cast<RankedTensorType>(global.getType());
    }
  }

  /// Adapter slots of the largest rank any adapter gives each linear, and
  /// each adapter's values for them (smaller ranks zero padded, scale folded
  /// into lora_B) in the module attribute kiln.adapters.
  void addAdapterSlots(ModuleOp module) {
    std::vector<LoraAdapter> adapters;
    std::map<std::string, int64_t> rank;
    std::map<std::string, std::pair<int64_t, int64_t>> dims;
    for (const auto &[name, dir] : opts_.adapters) {
      adapters.push_back(LoraAdapter::open(dir, cfg_));
      for (const LoraFactors &f : adapters.back().modules) {
        rank[f.module] = std::max(rank[f.module], adapters.back().rank);
        dims[f.module] = {f.in, f.out};
      }
    }
    // Slots in model order (the order of the weight table).
    std::vector<std::string> order;
    for (int64_t l = 0; l < cfg_.nLayer; ++l)
      for (const auto &s : loraModuleSuffixes())
        if (rank.count("h." + std::to_string(l) + "." + s))
          order.push_back("h." + std::to_string(l) + "." + s);
    for (const auto &m : order) {
      auto [in, out] = dims[m];
      for (auto [suffix, shape] : {std::pair{".lora_A", SmallVector<int64_t>{in, rank[m]}},
                                   {".lora_B", SmallVector<int64_t>{rank[m], out}}}) {
        auto type = RankedTensorType::get(shape, f32());
        loc_ = NameLoc::get(b_.getStringAttr(m + suffix));
        auto g = b_.create<GlobalOp>(loc_, m + suffix, type, DenseElementsAttr::get(type, 0.0f), DictionaryAttr(),
                                     DictionaryAttr());
        g.setAdapter(true);
        globals_[m + suffix] = type;
      }
    }
    SmallVector<Attribute> list;
    for (size_t k = 0; k < adapters.size(); ++k) {
      const LoraAdapter &a = adapters[k];
      SmallVector<NamedAttribute> values;
      for (const LoraFactors &f : a.modules) {
        int64_t R = rank[f.module], r = a.rank;
        std::vector<float> A(size_t(f.in * R), 0.0f), B(size_t(R * f.out), 0.0f);
        for (int64_t i = 0; i < f.in; ++i)
          for (int64_t j = 0; j < r; ++j)
            A[size_t(i * R + j)] = f.a[size_t(j * f.in + i)];
        for (int64_t j = 0; j < r; ++j)
          for (int64_t o = 0; o < f.out; ++o)
            B[size_t(j * f.out + o)] = float(a.scale * double(f.b[size_t(o * r + j)]));
        values.push_back(b_.getNamedAttr(f.module + ".lora_A", DenseElementsAttr::get(globals_.at(f.module + ".lora_A"), llvm::ArrayRef<float>(A))));
        values.push_back(b_.getNamedAttr(f.module + ".lora_B", DenseElementsAttr::get(globals_.at(f.module + ".lora_B"), llvm::ArrayRef<float>(B))));
      }
      list.push_back(b_.getDictionaryAttr({
          b_.getNamedAttr("name", b_.getStringAttr(opts_.adapters[k].first)),
          b_.getNamedAttr("source", b_.getStringAttr(std::filesystem::absolute(a.dir).lexically_normal().string())),
          b_.getNamedAttr("r", b_.getI64IntegerAttr(a.rank)),
          b_.getNamedAttr("alpha", b_.getF64FloatAttr(a.alpha)),
          b_.getNamedAttr("rslora", b_.getBoolAttr(a.rslora)),
          b_.getNamedAttr("values", b_.getDictionaryAttr(values)),
      }));
    }
    module->setAttr(kAdaptersAttr, b_.getArrayAttr(list));
  }

  void buildFunction(ModuleOp module, StringRef name, int64_t seq, bool lastOnly) {
    const int64_t B = opts_.batch, S = seq, E = cfg_.nEmbd, H = cfg_.nHead, D = cfg_.headDim(),
                  C = opts_.ctxLen, V = cfg_.vocabSize, L = cfg_.nLayer;
    auto ids = RankedTensorType::get({B, S}, b_.getI32Type());
    auto cache = act({B, H, C, D});
    SmallVector<Type> inputs = {ids, ids};
    SmallVector<Type> results = {act({B, lastOnly ? 1 : S, V})};
    for (int64_t l = 0; l < 2 * L; ++l) {
      inputs.push_back(cache);
      results.push_back(cache);
    }
    OpBuilder::InsertionGuard guard(b_);
    b_.setInsertionPointToEnd(module.getBody());
    loc_ = NameLoc::get(b_.getStringAttr(name));
    auto func = b_.create<func::FuncOp>(loc_, name, b_.getFunctionType(inputs, results));
    SmallVector<Attribute> argNames = {b_.getStringAttr("input_ids"), b_.getStringAttr("position_ids")};
    SmallVector<Attribute> resNames = {b_.getStringAttr("logits")};
    for (int64_t l = 0; l < L; ++l) {
      for (const char *kv : {"key", "value"}) {
        argNames.push_back(b_.getStringAttr("past_" + std::string(kv) + "." + std::to_string(l)));
        resNames.push_back(b_.getStringAttr("present_" + std::string(kv) + "." + std::to_string(l)));
      }
    }
    for (size_t i = 0; i < argNames.size(); ++i)
      func.setArgAttr(unsigned(i), "kiln.name", argNames[i]);
    for (size_t i = 0; i < resNames.size(); ++i)
      func.setResultAttr(unsigned(i), "kiln.name", resNames[i]);

    Block *body = func.addEntryBlock();
    b_.setInsertionPointToStart(body);
    Value inputIds = body->getArgument(0), positions = body->getArgument(1);
    SmallVector<Value> presents;

    auto xType = act({B, S, E});
    Value tok = b_.create<EmbeddingOp>(loc_, xType, weight("wte.weight"), inputIds);
    Value pos = b_.create<EmbeddingOp>(loc_, xType, weight("wpe.weight"), positions);
    Value x = b_.create<AddOp>(loc_, tok, pos);
    for (int64_t l = 0; l < L; ++l) {
      std::string p = "h." + std::to_string(l) + ".";
      loc_ = NameLoc::get(b_.getStringAttr("h." + std::to_string(l)));
      Value h = layerNorm(x, p + "ln_1");
      Value qkv = linear(h, p + "attn.c_attn");
      auto parts = b_.create<SplitOp>(loc_, TypeRange{xType, xType, xType}, qkv);
      auto heads = act({B, H, S, D});
      Value q = b_.create<SplitHeadsOp>(loc_, heads, parts.getResult(0));
      Value k = b_.create<SplitHeadsOp>(loc_, heads, parts.getResult(1));
      Value v = b_.create<SplitHeadsOp>(loc_, heads, parts.getResult(2));
      Value kCache = b_.create<CacheUpdateOp>(loc_, cache, body->getArgument(unsigned(2 + 2 * l)), k, positions);
      Value vCache = b_.create<CacheUpdateOp>(loc_, cache, body->getArgument(unsigned(3 + 2 * l)), v, positions);
      presents.push_back(kCache);
      presents.push_back(vCache);
      auto scoresType = act({B, H, S, C});
      Value scores = b_.create<MatMulOp>(loc_, scoresType, q, kCache, b_.getUnitAttr());
      scores = b_.create<ScaleOp>(loc_, scores, b_.getF64FloatAttr(cfg_.attentionScale(l)));
      scores = b_.create<CausalMaskOp>(loc_, scoresType, scores, positions);
      Value probs = b_.create<SoftmaxOp>(loc_, scores);
      Value ctx = b_.create<MatMulOp>(loc_, heads, probs, vCache, UnitAttr());
      Value merged = b_.create<MergeHeadsOp>(loc_, xType, ctx);
      x = b_.create<AddOp>(loc_, x, linear(merged, p + "attn.c_proj"));
      Value m = linear(layerNorm(x, p + "ln_2"), p + "mlp.c_fc");
      auto approx = cfg_.activation == "gelu" ? GeluApproximation::erf : GeluApproximation::tanh;
      m = b_.create<GeluOp>(loc_, m, approx);
      x = b_.create<AddOp>(loc_, x, linear(m, p + "mlp.c_proj"));
    }
    loc_ = NameLoc::get(b_.getStringAttr("ln_f"));
    x = layerNorm(x, "ln_f");
    if (lastOnly && S != 1)
      x = b_.create<SelectLastOp>(loc_, act({B, 1, E}), x, positions);
    auto xs = cast<RankedTensorType>(x.getType()).getShape();
    Value logits = b_.create<LMHeadOp>(loc_, act({xs[0], xs[1], V}),
                                       x, weight(ckpt_.tiedLMHead() ? "wte.weight" : "lm_head.weight"),
                                       InputQuantizationAttr(), FloatAttr());
    SmallVector<Value> rets = {logits};
    rets.append(presents.begin(), presents.end());
    b_.create<func::ReturnOp>(loc_, rets);
  }

  MLIRContext &ctx_;
  const Checkpoint &ckpt_;
  const GPT2Config &cfg_;
  ImportOptions opts_;
  OpBuilder b_;
  Location loc_;
  std::map<std::string, RankedTensorType> globals_;
};

} // namespace

OwningOpRef<ModuleOp> importGPT2(MLIRContext &context, const Checkpoint &checkpoint,
                                 const ImportOptions &options) {
  context.loadDialect<KilnDialect, func::FuncDialect>();
  const GPT2Config &cfg = checkpoint.config();
  ImportOptions opts = options;
  if (opts.ctxLen == 0)
    opts.ctxLen = cfg.nPositions;
  if (opts.ctxLen < 1 || opts.ctxLen > cfg.nPositions)
    throw Error("--ctx-len " + std::to_string(opts.ctxLen) + " must be in 1.." + std::to_string(cfg.nPositions) +
                " (the model's n_positions)");
  if (opts.promptLen == 0)
    opts.promptLen = std::min<int64_t>(128, opts.ctxLen);
  if (opts.promptLen < 1 || opts.promptLen > opts.ctxLen)
    throw Error("--prompt-len " + std::to_string(opts.promptLen) + " must be in 1.." +
                std::to_string(opts.ctxLen) + " (the context length)");
  if (opts.batch < 1)
    throw Error("batch size must be at least 1");
  std::set<std::string> names;
  for (const auto &[name, dir] : opts.adapters) {
    bool ok = !name.empty() && name != "none";
    for (char c : name)
      ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.');
    if (!ok)
      throw Error("--adapters: '" + name + "' is not an adapter name (letters, digits, _ - .; not 'none')");
    if (!names.insert(name).second)
      throw Error("--adapters: the name '" + name + "' is given twice");
  }
  return GPT2Builder(context, checkpoint, opts).build();
}

} // namespace kiln
