//===- Interpreter.cpp - the reference interpreter for kiln IR ------------===//
#include "kiln/Interpreter/Interpreter.h"

#include "kiln/IR/Adapters.h"

#include "kiln/Frontend/Checkpoint.h"
#include "kiln/IR/KilnOps.h"
#include "kiln/Quant/Quant.h"
#include "kiln/Support/Error.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/SymbolTable.h"
#include "llvm/ADT/TypeSwitch.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <limits>
#include <thread>

using namespace mlir;

namespace kiln {

Tensor::Tensor(std::vector<int64_t> s, double fill) : shape(std::move(s)), data(count(shape), fill) {}

size_t Tensor::count(const std::vector<int64_t> &shape) {
  size_t n = 1;
  for (int64_t d : shape)
    n *= size_t(d);
  return n;
}

namespace {

using TensorPtr = std::shared_ptr<const Tensor>;

std::vector<int64_t> shapeOf(Type t) {
  auto s = cast<RankedTensorType>(t).getShape();
  return {s.begin(), s.end()};
}

std::string shapeStr(const std::vector<int64_t> &shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? "x" : "") + std::to_string(shape[i]);
  return s + "]";
}

/// Splits [0, n) into contiguous chunks run on up to `threads` threads.
template <typename Fn> void parallelFor(size_t n, unsigned threads, size_t work, Fn fn) {
  if (threads <= 1 || work < (size_t(1) << 18) || n < 2) {
    fn(size_t(0), n);
    return;
  }
  size_t chunks = std::min<size_t>(threads, n);
  std::vector<std::thread> pool;
  size_t step = (n + chunks - 1) / chunks;
  for (size_t begin = step; begin < n; begin += step)
    pool.emplace_back(fn, begin, std::min(n, begin + step));
  fn(size_t(0), std::min(n, step));
  for (auto &t : pool)
    t.join();
}

/// Columns [n0, n1) of out[m, n] = sum_k a[m, k] * b[k, n] (+ bias[n]), k ascending for
/// every output. Blocked so a KxNT slab of b stays in L2 and an MTxNT block of out in L1
/// (the LM head's 128x50257 b streamed once per row was most of an eval's time); four k
/// steps per pass over a row are written left to right, so every output's sum is the same
/// chain of roundings whatever the blocking or vector width.
[[gnu::always_inline]] inline void contractColumns(const double *a, const double *b, const double *bias, double *out,
                                                   size_t M, size_t K, size_t N, size_t n0, size_t n1) {
  constexpr size_t NT = 128, MT = 16;
  for (size_t nb = n0; nb < n1; nb += NT) {
    const size_t ne = std::min(n1, nb + NT);
    for (size_t mb = 0; mb < M; mb += MT) {
      const size_t me = std::min(M, mb + MT);
      for (size_t m = mb; m < me; ++m)
        std::fill(out + m * N + nb, out + m * N + ne, 0.0);
      size_t k = 0;
      for (; k + 4 <= K; k += 4) {
        const double *r0 = b + k * N, *r1 = r0 + N, *r2 = r1 + N, *r3 = r2 + N;
        for (size_t m = mb; m < me; ++m) {
          const double *x = a + m * K + k;
          const double x0 = x[0], x1 = x[1], x2 = x[2], x3 = x[3];
          double *o = out + m * N;
          for (size_t n = nb; n < ne; ++n)
            o[n] = o[n] + x0 * r0[n] + x1 * r1[n] + x2 * r2[n] + x3 * r3[n];
        }
      }
      for (; k < K; ++k) {
        const double *row = b + k * N;
        for (size_t m = mb; m < me; ++m) {
          const double x = a[m * K + k];
          double *o = out + m * N;
          for (size_t n = nb; n < ne; ++n)
            o[n] = o[n] + x * row[n];
        }
      }
      if (bias)
        for (size_t m = mb; m < me; ++m)
          for (size_t n = nb; n < ne; ++n)
            out[m * N + n] += bias[n];
    }
  }
}

// The same code in 4-wide vectors where the CPU has AVX2. AVX2 alone enables no FMA, so
// every product is rounded before its sum exactly as in the baseline build.
[[gnu::target("avx2")]] void contractColumnsAvx2(const double *a, const double *b, const double *bias, double *out,
                                                 size_t M, size_t K, size_t N, size_t n0, size_t n1) {
  contractColumns(a, b, bias, out, M, K, N, n0, n1);
}
void contractColumnsBase(const double *a, const double *b, const double *bias, double *out, size_t M, size_t K,
                         size_t N, size_t n0, size_t n1) {
  contractColumns(a, b, bias, out, M, K, N, n0, n1);
}

void contract(const double *a, const double *b, const double *bias, double *out, size_t M, size_t K, size_t N,
              unsigned threads) {
  static const bool avx2 = __builtin_cpu_supports("avx2");
  parallelFor(N, threads, M * K * N, [&](size_t n0, size_t n1) {
    (avx2 ? contractColumnsAvx2 : contractColumnsBase)(a, b, bias, out, M, K, N, n0, n1);
  });
}

int64_t idAt(const Tensor &t, size_t i) { return int64_t(t.data[i]); }

/// Layer norm over the last axis: biased variance, as Hugging Face computes it.
Tensor layerNorm(const Tensor &x, const Tensor &g, const Tensor &b, double eps) {
  size_t dim = size_t(x.shape.back());
  Tensor r(x.shape);
  for (size_t row = 0; row < x.size() / dim; ++row) {
    const double *xr = &x.data[row * dim];
    double mean = 0, var = 0;
    for (size_t i = 0; i < dim; ++i)
      mean += xr[i];
    mean /= double(dim);
    for (size_t i = 0; i < dim; ++i)
      var += (xr[i] - mean) * (xr[i] - mean);
    double inv = 1.0 / std::sqrt(var / double(dim) + eps);
    for (size_t i = 0; i < dim; ++i)
      r.data[row * dim + i] = (xr[i] - mean) * inv * g.data[i] + b.data[i];
  }
  return r;
}

void gelu(Tensor &t, GeluApproximation approximation) {
  const double c = std::sqrt(2.0 / M_PI);
  for (double &v : t.data)
    v = approximation == GeluApproximation::tanh ? 0.5 * v * (1.0 + std::tanh(c * (v + 0.044715 * v * v * v)))
                                                 : 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)));
}

} // namespace

struct Interpreter::State {
  llvm::DenseMap<Value, TensorPtr> values;
  const Tensor &get(Value v) { return *values.at(v); }
  void set(Value v, Tensor t) { values[v] = std::make_shared<const Tensor>(std::move(t)); }
};

Interpreter::Interpreter(ModuleOp module) : module_(module) {
  threads_ = std::max(1u, std::thread::hardware_concurrency());
}

Interpreter::~Interpreter() = default;

std::vector<double> readGlobalValues(Operation *op, std::unique_ptr<Checkpoint> &checkpoint) {
  auto g = cast<GlobalOp>(op);
  auto shape = shapeOf(g.getType());
  std::vector<double> values(Tensor::count(shape));
  std::string name = g.getSymName().str();
  if (auto value = g.getValueAttr()) {
    auto dense = dyn_cast<DenseElementsAttr>(value);
    if (!dense)
      throw Error("weight @" + name + ": only dense inline values are supported");
    size_t i = 0;
    for (APFloat v : dense.getValues<APFloat>())
      values[i++] = v.convertToDouble();
    return values;
  }
  if (!checkpoint) {
    auto module = op->getParentOfType<ModuleOp>();
    auto dir = module ? module->getAttrOfType<StringAttr>(kCheckpointAttr) : StringAttr();
    if (!dir)
      throw Error("module has no '" + kCheckpointAttr.str() + "' attribute to read weight @" + name + " from");
    checkpoint = Checkpoint::open(dir.str());
  }
  const TensorView &view = checkpoint->tensor(name);
  if (view.shape != shape)
    throw Error("weight @" + name + " is " + shapeStr(shape) + " in the IR but " + shapeStr(view.shape) + " in " +
                view.file);
  for (size_t i = 0; i < values.size(); ++i)
    values[i] = view.at(i);
  return values;
}

QuantSpec quantSpecOf(Operation *globalOp) {
  QuantSpec spec;
  auto quant = cast<GlobalOp>(globalOp).getQuantAttr();
  if (!quant)
    return spec;
  parseWeightFormat(quant.getAs<StringAttr>("format").str(), spec.format);
  spec.groupSize = quant.getAs<IntegerAttr>("group_size").getInt();
  spec.symmetric = quant.getAs<BoolAttr>("symmetric").getValue();
  spec.axis = quant.getAs<IntegerAttr>("axis").getInt();
  if (auto scales = quant.getAs<DenseFPElementsAttr>("scales"))
    for (APFloat v : scales.getValues<APFloat>())
      spec.scales.push_back(v.convertToFloat());
  return spec;
}

std::vector<double> readEffectiveGlobalValues(Operation *globalOp, std::unique_ptr<Checkpoint> &checkpoint) {
  std::vector<double> values = readGlobalValues(globalOp, checkpoint);
  QuantSpec spec = quantSpecOf(globalOp);
  if (spec.format == WeightFormat::F32)
    return values;
  auto shape = shapeOf(cast<GlobalOp>(globalOp).getType());
  // The format's math is defined on float32 weights (what a backend packs).
  std::vector<float> f(values.begin(), values.end());
  std::vector<float> q = quantizeDequantize(f.data(), shape[0], shape[1], spec);
  return std::vector<double>(q.begin(), q.end());
}

const Tensor &Interpreter::global(Operation *op) {
  auto it = globals_.find(op);
  if (it != globals_.end())
    return it->second;
  Tensor t;
  t.shape = shapeOf(cast<GlobalOp>(op).getType());
  t.data = readEffectiveGlobalValues(op, checkpoint_);
  return globals_.emplace(op, std::move(t)).first->second;
}

void Interpreter::setAdapter(const std::string &name) {
  checkAdapterName(module_, name);
  std::vector<std::pair<Operation *, Tensor>> slots;
  for (GlobalOp slot : adapterSlots(module_)) {
    Tensor t;
    t.shape = shapeOf(slot.getType());
    std::vector<float> v = adapterSlotValues(module_, slot, name);
    t.data.assign(v.begin(), v.end());
    slots.emplace_back(slot, std::move(t));
  }
  for (auto &[op, t] : slots) {
    globals_[op] = std::move(t);
    transposed_.erase(op);
  }
}

const Tensor &Interpreter::transposedGlobal(Operation *op) {
  auto it = transposed_.find(op);
  if (it != transposed_.end())
    return it->second;
  const Tensor &src = global(op);
  size_t R = size_t(src.shape[0]), Cn = size_t(src.shape[1]);
  Tensor t({src.shape[1], src.shape[0]});
  for (size_t r = 0; r < R; ++r)
    for (size_t c = 0; c < Cn; ++c)
      t.data[c * R + r] = src.data[r * Cn + c];
  return transposed_.emplace(op, std::move(t)).first->second;
}

namespace {
/// `x` with every row of K values replaced by its int8 quantization
/// (include/kiln/Quant/Quant.h), stored in `storage`; `x` itself without `mode`.
const Tensor &quantizeInput(const Tensor &x, size_t K, std::optional<InputQuantization> mode,
                            std::optional<llvm::APFloat> scaleAttr, Tensor &storage) {
  if (!mode)
    return x;
  float staticScale = *mode == InputQuantization::Static ? float(scaleAttr->convertToDouble()) : 0;
  storage = x;
  std::vector<float> row(K);
  std::vector<int8_t> q(K);
  for (size_t r0 = 0; r0 < storage.size(); r0 += K) {
    for (size_t k = 0; k < K; ++k)
      row[k] = float(storage.data[r0 + k]);
    float scale = quantizeActivationRow(row.data(), int64_t(K), staticScale, q.data());
    for (size_t k = 0; k < K; ++k)
      storage.data[r0 + k] = double(q[k]) * double(scale);
  }
  return storage;
}
} // namespace

std::vector<Tensor> Interpreter::call(const std::string &name, const std::vector<Tensor> &args) {
  auto func = module_.lookupSymbol<func::FuncOp>(name);
  if (!func)
    throw Error("module has no function @" + name);
  auto argTypes = func.getArgumentTypes();
  if (args.size() != argTypes.size())
    throw Error("@" + name + " takes " + std::to_string(argTypes.size()) + " arguments, got " +
                std::to_string(args.size()));
  State st;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i].shape != shapeOf(argTypes[i]) || args[i].size() != Tensor::count(args[i].shape))
      throw Error("@" + name + " argument " + std::to_string(i) + " must be " + shapeStr(shapeOf(argTypes[i])) +
                  ", got " + shapeStr(args[i].shape));
    st.set(func.getArgument(unsigned(i)), args[i]);
  }
  SymbolTableCollection symbols;
  std::vector<Tensor> results;
  const double inf = std::numeric_limits<double>::infinity();

  for (Operation &op : func.getBody().front()) {
    if (observer_ && !isa<WeightOp>(op)) {
      std::vector<const Tensor *> operands;
      for (Value v : op.getOperands())
        operands.push_back(&st.get(v));
      observer_(&op, operands);
    }
    auto out = [&](unsigned i = 0) { return Tensor(shapeOf(op.getResult(i).getType())); };
    llvm::TypeSwitch<Operation *>(&op)
        .Case<WeightOp>([&](WeightOp w) {
          Operation *g = symbols.lookupNearestSymbolFrom(w, w.getGlobalAttr());
          // Alias the cached global: weights are never copied per call.
          st.values[w.getResult()] = TensorPtr(&global(g), [](const Tensor *) {});
        })
        .Case<EmbeddingOp>([&](EmbeddingOp e) {
          const Tensor &table = st.get(e.getTable()), &ids = st.get(e.getIds());
          Tensor r = out();
          size_t rows = size_t(table.shape[0]), dim = size_t(table.shape[1]);
          for (size_t i = 0; i < ids.size(); ++i) {
            int64_t id = idAt(ids, i);
            if (id < 0)
              continue; // padding slot: zero row
            if (size_t(id) >= rows)
              throw Error("id " + std::to_string(id) + " is outside the embedding table of " + std::to_string(rows) +
                          " rows");
            std::copy_n(&table.data[size_t(id) * dim], dim, &r.data[i * dim]);
          }
          st.set(e.getResult(), std::move(r));
        })
        .Case<LayerNormOp>([&](LayerNormOp ln) {
          st.set(ln.getResult(), layerNorm(st.get(ln.getInput()), st.get(ln.getGamma()), st.get(ln.getBeta()),
                                           ln.getEpsilon().convertToDouble()));
        })
        .Case<ResidualLayerNormOp>([&](ResidualLayerNormOp rl) {
          Tensor sum = st.get(rl.getInput());
          const Tensor &res = st.get(rl.getResidual());
          for (size_t i = 0; i < sum.size(); ++i)
            sum.data[i] += res.data[i];
          st.set(rl.getNormalized(), layerNorm(sum, st.get(rl.getGamma()), st.get(rl.getBeta()),
                                               rl.getEpsilon().convertToDouble()));
          st.set(rl.getSum(), std::move(sum));
        })
        .Case<LinearOp>([&](LinearOp l) {
          const Tensor *xp = &st.get(l.getInput()), &w = st.get(l.getWeight());
          const Tensor *bias = l.getBias() ? &st.get(l.getBias()) : nullptr;
          size_t K = size_t(w.shape[0]), N = size_t(w.shape[1]);
          Tensor quantized;
          const Tensor &x = quantizeInput(*xp, K, l.getInputQuant(), l.getInputScale(), quantized);
          Tensor r = out();
          contract(x.data.data(), w.data.data(), bias ? bias->data.data() : nullptr, r.data.data(), x.size() / K, K,
                   N, threads_);
          if (auto epilogue = l.getGeluEpilogue())
            gelu(r, *epilogue);
          st.set(l.getResult(), std::move(r));
        })
        .Case<LMHeadOp>([&](LMHeadOp h) {
          if (logitsSkipped_) {
            st.set(h.getResult(), out());
            return;
          }
          Tensor quantized;
          const Tensor &x = quantizeInput(st.get(h.getInput()), size_t(shapeOf(h.getInput().getType()).back()),
                                          h.getInputQuant(), h.getInputScale(), quantized);
          // Contract against E^T so each logit sums over k in order, vectorised over the vocab.
          Tensor transposedLocal;
          const Tensor *et;
          if (auto w = h.getEmbedding().getDefiningOp<WeightOp>()) {
            et = &transposedGlobal(symbols.lookupNearestSymbolFrom(w, w.getGlobalAttr()));
          } else {
            const Tensor &e = st.get(h.getEmbedding());
            transposedLocal = Tensor({e.shape[1], e.shape[0]});
            for (int64_t v = 0; v < e.shape[0]; ++v)
              for (int64_t k = 0; k < e.shape[1]; ++k)
                transposedLocal.data[size_t(k * e.shape[0] + v)] = e.data[size_t(v * e.shape[1] + k)];
            et = &transposedLocal;
          }
          size_t K = size_t(et->shape[0]), V = size_t(et->shape[1]);
          Tensor r = out();
          contract(x.data.data(), et->data.data(), nullptr, r.data.data(), x.size() / K, K, V, threads_);
          st.set(h.getResult(), std::move(r));
        })
        .Case<GeluOp>([&](GeluOp g) {
          Tensor r = st.get(g.getInput());
          gelu(r, g.getApproximation());
          st.set(g.getResult(), std::move(r));
        })
        .Case<AddOp>([&](AddOp a) {
          Tensor r = st.get(a.getLhs());
          const Tensor &rhs = st.get(a.getRhs());
          for (size_t i = 0; i < r.size(); ++i)
            r.data[i] += rhs.data[i];
          st.set(a.getResult(), std::move(r));
        })
        .Case<ScaleOp>([&](ScaleOp s) {
          Tensor r = st.get(s.getInput());
          double f = s.getFactor().convertToDouble();
          for (double &v : r.data)
            v *= f;
          st.set(s.getResult(), std::move(r));
        })
        .Case<SplitOp>([&](SplitOp s) {
          const Tensor &x = st.get(s.getInput());
          size_t parts = s.getNumResults(), dim = size_t(x.shape.back()), part = dim / parts;
          for (size_t p = 0; p < parts; ++p) {
            Tensor r = out(unsigned(p));
            for (size_t row = 0; row < x.size() / dim; ++row)
              std::copy_n(&x.data[row * dim + p * part], part, &r.data[row * part]);
            st.set(s.getResult(unsigned(p)), std::move(r));
          }
        })
        .Case<SplitHeadsOp>([&](SplitHeadsOp s) {
          const Tensor &x = st.get(s.getInput());
          Tensor r = out();
          size_t B = size_t(r.shape[0]), H = size_t(r.shape[1]), S = size_t(r.shape[2]), D = size_t(r.shape[3]);
          for (size_t b = 0; b < B; ++b)
            for (size_t h = 0; h < H; ++h)
              for (size_t s2 = 0; s2 < S; ++s2)
                std::copy_n(&x.data[(b * S + s2) * H * D + h * D], D, &r.data[((b * H + h) * S + s2) * D]);
          st.set(s.getResult(), std::move(r));
        })
        .Case<MergeHeadsOp>([&](MergeHeadsOp m) {
          const Tensor &x = st.get(m.getInput());
          Tensor r = out();
          size_t B = size_t(x.shape[0]), H = size_t(x.shape[1]), S = size_t(x.shape[2]), D = size_t(x.shape[3]);
          for (size_t b = 0; b < B; ++b)
            for (size_t h = 0; h < H; ++h)
              for (size_t s2 = 0; s2 < S; ++s2)
                std::copy_n(&x.data[((b * H + h) * S + s2) * D], D, &r.data[(b * S + s2) * H * D + h * D]);
          st.set(m.getResult(), std::move(r));
        })
        .Case<CacheUpdateOp>([&](CacheUpdateOp c) {
          Tensor r = st.get(c.getCache());
          const Tensor &u = st.get(c.getUpdate()), &pos = st.get(c.getPositionIds());
          size_t B = size_t(u.shape[0]), H = size_t(u.shape[1]), S = size_t(u.shape[2]), D = size_t(u.shape[3]),
                 C = size_t(r.shape[2]);
          for (size_t b = 0; b < B; ++b)
            for (size_t s2 = 0; s2 < S; ++s2) {
              int64_t p = idAt(pos, b * S + s2);
              if (p < 0)
                continue;
              if (size_t(p) >= C)
                throw Error("position id " + std::to_string(p) + " is outside the KV cache of " + std::to_string(C) +
                            " positions");
              for (size_t h = 0; h < H; ++h) {
                const double *src = &u.data[((b * H + h) * S + s2) * D];
                double *dst = &r.data[((b * H + h) * C + size_t(p)) * D];
                if (c.getFormat() == CacheFormat::int8) {
                  // One int8 row per head per token (include/kiln/Quant/Quant.h).
                  std::vector<float> row(src, src + D);
                  std::vector<int8_t> q(D);
                  float scale = quantizeActivationRow(row.data(), int64_t(D), 0, q.data());
                  for (size_t d = 0; d < D; ++d)
                    dst[d] = double(q[d]) * double(scale);
                } else {
                  std::copy_n(src, D, dst);
                }
              }
            }
          st.set(c.getResult(), std::move(r));
        })
        .Case<MatMulOp>([&](MatMulOp mm) {
          const Tensor &a = st.get(mm.getLhs()), &b = st.get(mm.getRhs());
          Tensor r = out();
          size_t n = a.shape.size(), M = size_t(a.shape[n - 2]), K = size_t(a.shape[n - 1]),
                 N = size_t(r.shape[n - 1]);
          size_t batches = a.size() / (M * K);
          bool tr = mm.getTransposeRhs();
          for (size_t bt = 0; bt < batches; ++bt) {
            const double *ap = &a.data[bt * M * K], *bp = &b.data[bt * K * N];
            double *rp = &r.data[bt * M * N];
            for (size_t i = 0; i < M; ++i)
              for (size_t j = 0; j < N; ++j) {
                double acc = 0;
                for (size_t k = 0; k < K; ++k)
                  acc += ap[i * K + k] * (tr ? bp[j * K + k] : bp[k * N + j]);
                rp[i * N + j] = acc;
              }
          }
          st.set(mm.getResult(), std::move(r));
        })
        .Case<CausalMaskOp>([&](CausalMaskOp cm) {
          Tensor r = st.get(cm.getScores());
          const Tensor &pos = st.get(cm.getPositionIds());
          size_t B = size_t(r.shape[0]), H = size_t(r.shape[1]), S = size_t(r.shape[2]), C = size_t(r.shape[3]);
          for (size_t b = 0; b < B; ++b)
            for (size_t h = 0; h < H; ++h)
              for (size_t s2 = 0; s2 < S; ++s2) {
                int64_t p = idAt(pos, b * S + s2);
                double *row = &r.data[((b * H + h) * S + s2) * C];
                for (size_t c = 0; c < C; ++c)
                  if (p < 0 || int64_t(c) > p)
                    row[c] = -inf;
              }
          st.set(cm.getResult(), std::move(r));
        })
        .Case<SoftmaxOp>([&](SoftmaxOp sm) {
          Tensor r = st.get(sm.getInput());
          size_t dim = size_t(r.shape.back());
          for (size_t row = 0; row < r.size() / dim; ++row) {
            double *x = &r.data[row * dim];
            double mx = -inf, sum = 0;
            for (size_t i = 0; i < dim; ++i)
              mx = std::max(mx, x[i]);
            if (mx == -inf) { // nothing visible (a padding slot): zeros, not NaN
              std::fill_n(x, dim, 0.0);
              continue;
            }
            for (size_t i = 0; i < dim; ++i)
              sum += x[i] = std::exp(x[i] - mx);
            for (size_t i = 0; i < dim; ++i)
              x[i] /= sum;
          }
          st.set(sm.getResult(), std::move(r));
        })
        .Case<AttentionOp>([&](AttentionOp at) {
          const Tensor &q = st.get(at.getQuery()), &kc = st.get(at.getKeyCache()), &vc = st.get(at.getValueCache()),
                       &pos = st.get(at.getPositionIds());
          double scale = at.getScale().convertToDouble();
          Tensor r = out();
          size_t B = size_t(q.shape[0]), H = size_t(q.shape[1]), S = size_t(q.shape[2]), D = size_t(q.shape[3]),
                 C = size_t(kc.shape[2]);
          std::vector<double> p(C);
          for (size_t b = 0; b < B; ++b)
            for (size_t h = 0; h < H; ++h)
              for (size_t s2 = 0; s2 < S; ++s2) {
                int64_t limit = idAt(pos, b * S + s2);
                if (limit < 0)
                  continue; // padding slot: zero output, as softmax of an all -inf row
                const double *qr = &q.data[((b * H + h) * S + s2) * D];
                size_t visible = std::min<size_t>(C, size_t(limit) + 1);
                double mx = -inf, sum = 0;
                for (size_t c = 0; c < visible; ++c) {
                  double acc = 0;
                  for (size_t d = 0; d < D; ++d)
                    acc += qr[d] * kc.data[((b * H + h) * C + c) * D + d];
                  p[c] = acc * scale;
                  mx = std::max(mx, p[c]);
                }
                for (size_t c = 0; c < visible; ++c)
                  sum += p[c] = std::exp(p[c] - mx);
                double *o = &r.data[((b * H + h) * S + s2) * D];
                for (size_t c = 0; c < visible; ++c)
                  for (size_t d = 0; d < D; ++d)
                    o[d] += p[c] / sum * vc.data[((b * H + h) * C + c) * D + d];
              }
          st.set(at.getResult(), std::move(r));
        })
        .Case<SelectLastOp>([&](SelectLastOp sl) {
          const Tensor &x = st.get(sl.getInput()), &pos = st.get(sl.getPositionIds());
          Tensor r = out();
          size_t B = size_t(x.shape[0]), S = size_t(x.shape[1]), E = size_t(x.shape[2]);
          for (size_t b = 0; b < B; ++b) {
            size_t best = 0;
            for (size_t s2 = 1; s2 < S; ++s2)
              if (idAt(pos, b * S + s2) > idAt(pos, b * S + best))
                best = s2;
            if (idAt(pos, b * S + best) < 0)
              throw Error("select_last: batch row " + std::to_string(b) + " has no real token");
            std::copy_n(&x.data[(b * S + best) * E], E, &r.data[b * E]);
          }
          st.set(sl.getResult(), std::move(r));
        })
        .Case<func::ReturnOp>([&](func::ReturnOp ret) {
          for (Value v : ret.getOperands())
            results.push_back(st.get(v));
        })
        .Default([&](Operation *other) {
          throw Error("the reference interpreter cannot execute '" + other->getName().getStringRef().str() + "'");
        });
  }
  return results;
}

} // namespace kiln
