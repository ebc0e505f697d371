//===- Tape.cpp - f32 forward and backward of a kiln function, for training -===//
#include "Tape.h"

#include "kiln/Frontend/Checkpoint.h"
#include "kiln/Interpreter/Interpreter.h"
#include "kiln/Quant/Quant.h"
#include "kiln/Support/Error.h"

#include "mlir/IR/SymbolTable.h"
#include "llvm/ADT/TypeSwitch.h"

#include <cblas.h>

#include <cmath>
#include <limits>
#include <thread>

extern "C" void openblas_set_num_threads(int threads);

using namespace mlir;

namespace kiln::kd {

namespace {

[[noreturn]] void unsupported(Operation *op, const std::string &why) {
  throw Error("cannot train through '" + op->getName().getStringRef().str() + "': " + why);
}

int gThreads = 1;

/// C[M,N] (+)= op(A) op(B), row-major. OpenBLAS runs single-threaded in the
/// calling thread; large products split their N columns over gThreads threads
/// here instead, since OpenBLAS's own idle workers spin (sched_yield) between
/// calls and took a fifth of the training time from the row loops between them.
void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float *A, const float *B, float *C, bool accumulate) {
  auto part = [&](int64_t n0, int64_t n1) {
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, int(M), int(n1 - n0),
                int(K), 1.0f, A, int(ta ? M : K), tb ? B + n0 * K : B + n0, int(tb ? K : N),
                accumulate ? 1.0f : 0.0f, C + n0, int(N));
  };
  int64_t parts = std::min<int64_t>(gThreads, N / 64);
  if (parts <= 1 || M * N * K < (int64_t(1) << 22)) {
    part(0, N);
    return;
  }
  int64_t step = (N + parts - 1) / parts;
  std::vector<std::thread> pool;
  for (int64_t n0 = step; n0 < N; n0 += step)
    pool.emplace_back(part, n0, std::min(N, n0 + step));
  part(0, std::min(N, step));
  for (auto &t : pool)
    t.join();
}

/// Each row of K values replaced by its int8 quantization (Quant.h), as the student computes it.
std::vector<float> quantizeRows(const std::vector<float> &x, int64_t K, float staticScale) {
  std::vector<float> out(x.size());
  std::vector<int8_t> q(static_cast<size_t>(K));
  for (size_t r0 = 0; r0 < x.size(); r0 += size_t(K)) {
    float s = quantizeActivationRow(&x[r0], K, staticScale, q.data());
    for (int64_t k = 0; k < K; ++k)
      out[r0 + size_t(k)] = float(q[size_t(k)]) * s;
  }
  return out;
}

const double kGeluC = std::sqrt(2.0 / M_PI);
float geluOf(float z, GeluApproximation a) {
  double v = z;
  return float(a == GeluApproximation::tanh ? 0.5 * v * (1.0 + std::tanh(kGeluC * (v + 0.044715 * v * v * v)))
                                            : 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0))));
}
float geluGrad(float z, GeluApproximation a) {
  double v = z;
  if (a == GeluApproximation::tanh) {
    double t = std::tanh(kGeluC * (v + 0.044715 * v * v * v));
    return float(0.5 * (1 + t) + 0.5 * v * (1 - t * t) * kGeluC * (1 + 3 * 0.044715 * v * v));
  }
  return float(0.5 * (1 + std::erf(v / std::sqrt(2.0))) + v * std::exp(-0.5 * v * v) / std::sqrt(2 * M_PI));
}

void addInto(std::vector<float> &dst, const std::vector<float> &src) {
  if (dst.empty())
    dst.assign(src.size(), 0.0f);
  for (size_t i = 0; i < src.size(); ++i)
    dst[i] += src[i];
}

const void *K(Value v) { return v.getAsOpaquePointer(); }

/// [T, H*D] rows -> [H, T, D] heads (split_heads; the backward of merge_heads), or back.
std::vector<float> reorderHeads(const std::vector<float> &x, int64_t H, int64_t T, int64_t D, bool toHeads) {
  std::vector<float> r(x.size());
  for (int64_t h = 0; h < H; ++h)
    for (int64_t t = 0; t < T; ++t) {
      size_t row = size_t(t * H * D + h * D), head = size_t((h * T + t) * D);
      std::copy_n(&x[toHeads ? row : head], D, &r[toHeads ? head : row]);
    }
  return r;
}

GlobalOp weightGlobal(Value v) {
  auto w = v.getDefiningOp<WeightOp>();
  return w ? SymbolTable::lookupNearestSymbolFrom<GlobalOp>(w, w.getGlobalAttr()) : GlobalOp();
}

} // namespace

Tape::Tape(func::FuncOp func) : func_(func) {
  for (Operation &op : func.getBody().front()) {
    if (!isa<WeightOp, EmbeddingOp, LayerNormOp, ResidualLayerNormOp, LinearOp, LMHeadOp, GeluOp, AddOp, ScaleOp,
             SplitOp, SplitHeadsOp, MergeHeadsOp, CacheUpdateOp, MatMulOp, CausalMaskOp, SoftmaxOp, SelectLastOp,
             func::ReturnOp>(op))
      unsupported(&op, "no backward (run kiln-distill-kd before kiln-fuse-attention)");
    if (auto w = dyn_cast<WeightOp>(op)) {
      GlobalOp g = weightGlobal(w.getResult());
      if (paramIndex_.count(g))
        continue;
      Param p;
      p.global = g;
      auto shape = cast<RankedTensorType>(g.getType()).getShape();
      p.value.shape.assign(shape.begin(), shape.end());
      std::vector<double> v = readEffectiveGlobalValues(g, checkpoint_);
      p.value.data.assign(v.begin(), v.end());
      paramIndex_[g] = params_.size();
      params_.push_back(std::move(p));
    }
  }
}

Tape::~Tape() = default;

void Tape::setThreads(int threads) {
  openblas_set_num_threads(1);
  gThreads = threads > 0 ? threads : 1;
}

bool Tape::setTrainable(GlobalOp global) {
  Param *p = param(global);
  if (!p)
    return false;
  p->grad.assign(p->value.size(), 0.0f);
  return true;
}

Param *Tape::param(GlobalOp global) {
  auto it = paramIndex_.find(global);
  return it == paramIndex_.end() ? nullptr : &params_[it->second];
}

std::vector<Param *> Tape::params() {
  std::vector<Param *> out;
  for (auto &p : params_)
    out.push_back(&p);
  return out;
}

void Tape::zeroGrads() {
  for (auto &p : params_)
    std::fill(p.grad.begin(), p.grad.end(), 0.0f);
}

Buf &Tape::val(Value v) {
  if (GlobalOp g = weightGlobal(v))
    return params_[paramIndex_.at(g)].value;
  auto it = values_.find(K(v));
  if (it == values_.end())
    throw Error("kiln-distill-kd: internal error: a value used before it is defined");
  return it->second;
}


const std::vector<float> &Tape::gradOf(Value v) {
  if (GlobalOp g = weightGlobal(v))
    return params_[paramIndex_.at(g)].grad;
  return grads_[K(v)];
}

const Buf &Tape::valueOf(Value v) { return val(v); }

const Buf &Tape::forward(const std::vector<int32_t> &ids) {
  ids_ = ids;
  T_ = int64_t(ids.size());
  values_.clear();
  grads_.clear();
  preGelu_.clear();
  quantizedInput_.clear();
  Block &body = func_.getBody().front();
  // input_ids and position_ids: [1, T]; the caches are empty (never read: their updates stand for them).
  Buf in{{1, T_}, {}}, pos{{1, T_}, {}};
  for (int64_t t = 0; t < T_; ++t) {
    in.data.push_back(float(ids[size_t(t)]));
    pos.data.push_back(float(t));
  }
  values_[K(body.getArgument(0))] = in;
  values_[K(body.getArgument(1))] = pos;
  for (Operation &op : body)
    forwardOp(op);
  auto ret = cast<func::ReturnOp>(body.getTerminator());
  return val(ret.getOperand(0));
}

void Tape::forwardOp(Operation &op) {
  auto set = [&](Value v, std::vector<int64_t> shape, std::vector<float> data) {
    values_[K(v)] = Buf{std::move(shape), std::move(data)};
  };
  llvm::TypeSwitch<Operation *>(&op)
      .Case<WeightOp, func::ReturnOp>([](auto) {})
      .Case<EmbeddingOp>([&](EmbeddingOp e) {
        const Buf &table = val(e.getTable()), &ids = val(e.getIds());
        int64_t dim = table.shape[1];
        std::vector<float> r(size_t(T_ * dim));
        for (int64_t t = 0; t < T_; ++t) {
          int64_t id = int64_t(ids.data[size_t(t)]);
          if (id < 0 || id >= table.shape[0])
            throw Error("kiln-distill-kd: id " + std::to_string(id) + " is outside an embedding table of " +
                        std::to_string(table.shape[0]) + " rows");
          std::copy_n(&table.data[size_t(id * dim)], dim, &r[size_t(t * dim)]);
        }
        set(e.getResult(), {1, T_, dim}, std::move(r));
      })
      .Case<LayerNormOp, ResidualLayerNormOp>([&](Operation *o) {
        auto ln = dyn_cast<LayerNormOp>(o);
        auto rl = dyn_cast<ResidualLayerNormOp>(o);
        Buf x = val(ln ? ln.getInput() : rl.getInput());
        if (rl) {
          const Buf &res = val(rl.getResidual());
          for (size_t i = 0; i < x.size(); ++i)
            x.data[i] += res.data[i];
        }
        const Buf &g = val(ln ? ln.getGamma() : rl.getGamma()), &b = val(ln ? ln.getBeta() : rl.getBeta());
        double eps = (ln ? ln.getEpsilon() : rl.getEpsilon()).convertToDouble();
        size_t dim = size_t(x.shape.back());
        std::vector<float> y(x.size());
        for (size_t r0 = 0; r0 < x.size(); r0 += dim) {
          double mean = 0, var = 0;
          for (size_t i = 0; i < dim; ++i)
            mean += x.data[r0 + i];
          mean /= double(dim);
          for (size_t i = 0; i < dim; ++i)
            var += (x.data[r0 + i] - mean) * (x.data[r0 + i] - mean);
          double inv = 1.0 / std::sqrt(var / double(dim) + eps);
          for (size_t i = 0; i < dim; ++i)
            y[r0 + i] = float((x.data[r0 + i] - mean) * inv * g.data[i] + b.data[i]);
        }
        if (rl) {
          set(rl.getNormalized(), x.shape, std::move(y));
          values_[K(rl.getSum())] = std::move(x);
        } else {
          set(ln.getResult(), x.shape, std::move(y));
        }
      })
      .Case<LinearOp>([&](LinearOp l) {
        const Buf &x = val(l.getInput()), &w = val(l.getWeight());
        int64_t K = w.shape[0], N = w.shape[1], M = int64_t(x.size()) / K;
        std::vector<float> xq;
        if (auto mode = l.getInputQuant())
          xq = quantizeRows(x.data, K, *mode == InputQuantization::Static ? float(l.getInputScale()->convertToDouble()) : 0);
        std::vector<float> z(size_t(M * N));
        if (l.getBias()) {
          const Buf &b = val(l.getBias());
          for (int64_t m = 0; m < M; ++m)
            std::copy_n(b.data.data(), N, &z[size_t(m * N)]);
        }
        gemm(false, false, M, N, K, xq.empty() ? x.data.data() : xq.data(), w.data.data(), z.data(), bool(l.getBias()));
        std::vector<int64_t> shape = x.shape;
        shape.back() = N;
        if (auto e = l.getGeluEpilogue()) {
          // Keep the pre-activation for the backward pass under a name of its own.
          std::vector<float> y(z.size());
          for (size_t i = 0; i < z.size(); ++i)
            y[i] = geluOf(z[i], *e);
          preGelu_[l] = std::move(z);
          set(l.getResult(), shape, std::move(y));
        } else {
          set(l.getResult(), shape, std::move(z));
        }
        if (!xq.empty())
          quantizedInput_[l] = std::move(xq);
      })
      .Case<LMHeadOp>([&](LMHeadOp h) {
        const Buf &x = val(h.getInput()), &e = val(h.getEmbedding());
        int64_t V = e.shape[0], K = e.shape[1], M = int64_t(x.size()) / K;
        std::vector<float> xq;
        if (auto mode = h.getInputQuant())
          xq = quantizeRows(x.data, K, *mode == InputQuantization::Static ? float(h.getInputScale()->convertToDouble()) : 0);
        std::vector<float> r(size_t(M * V));
        gemm(false, true, M, V, K, xq.empty() ? x.data.data() : xq.data(), e.data.data(), r.data(), false);
        std::vector<int64_t> shape = x.shape;
        shape.back() = V;
        set(h.getResult(), shape, std::move(r));
        if (!xq.empty())
          quantizedInput_[h] = std::move(xq);
      })
      .Case<GeluOp>([&](GeluOp g) {
        Buf r = val(g.getInput());
        for (float &v : r.data)
          v = geluOf(v, g.getApproximation());
        values_[K(g.getResult())] = std::move(r);
      })
      .Case<AddOp>([&](AddOp a) {
        Buf r = val(a.getLhs());
        const Buf &b = val(a.getRhs());
        for (size_t i = 0; i < r.size(); ++i)
          r.data[i] += b.data[i];
        values_[K(a.getResult())] = std::move(r);
      })
      .Case<ScaleOp>([&](ScaleOp s) {
        Buf r = val(s.getInput());
        float f = float(s.getFactor().convertToDouble());
        for (float &v : r.data)
          v *= f;
        values_[K(s.getResult())] = std::move(r);
      })
      .Case<SplitOp>([&](SplitOp s) {
        const Buf &x = val(s.getInput());
        size_t parts = s.getNumResults(), dim = size_t(x.shape.back()), part = dim / parts, rows = x.size() / dim;
        for (size_t p = 0; p < parts; ++p) {
          std::vector<float> r(rows * part);
          for (size_t row = 0; row < rows; ++row)
            std::copy_n(&x.data[row * dim + p * part], part, &r[row * part]);
          std::vector<int64_t> shape = x.shape;
          shape.back() = int64_t(part);
          set(s.getResult(unsigned(p)), shape, std::move(r));
        }
      })
      .Case<SplitHeadsOp>([&](SplitHeadsOp s) {
        const Buf &x = val(s.getInput());
        auto type = cast<RankedTensorType>(s.getResult().getType()).getShape();
        int64_t H = type[1], D = type[3];
        set(s.getResult(), {1, H, T_, D}, reorderHeads(x.data, H, T_, D, true));
      })
      .Case<MergeHeadsOp>([&](MergeHeadsOp m) {
        const Buf &x = val(m.getInput());
        int64_t H = x.shape[1], D = x.shape[3];
        set(m.getResult(), {1, T_, H * D}, reorderHeads(x.data, H, T_, D, false));
      })
      .Case<CacheUpdateOp>([&](CacheUpdateOp c) {
        // An empty cache updated at positions 0..T-1 holds just the window's rows.
        Buf r = val(c.getUpdate());
        if (c.getFormat() == CacheFormat::int8)
          r.data = quantizeRows(r.data, r.shape[3], 0);
        values_[K(c.getResult())] = std::move(r);
      })
      .Case<MatMulOp>([&](MatMulOp mm) {
        const Buf &a = val(mm.getLhs()), &b = val(mm.getRhs());
        int64_t H = a.shape[1], M = a.shape[2], K = a.shape[3];
        bool tr = mm.getTransposeRhs();
        int64_t N = tr ? b.shape[2] : b.shape[3];
        std::vector<float> r(size_t(H * M * N));
        for (int64_t h = 0; h < H; ++h)
          gemm(false, tr, M, N, K, &a.data[size_t(h * M * K)], &b.data[size_t(h * K * N)], &r[size_t(h * M * N)], false);
        set(mm.getResult(), {1, H, M, N}, std::move(r));
      })
      .Case<CausalMaskOp>([&](CausalMaskOp cm) {
        Buf r = val(cm.getScores());
        int64_t H = r.shape[1], S = r.shape[2], C = r.shape[3];
        for (int64_t h = 0; h < H; ++h)
          for (int64_t s = 0; s < S; ++s)
            for (int64_t c = s + 1; c < C; ++c)
              r.data[size_t((h * S + s) * C + c)] = -std::numeric_limits<float>::infinity();
        values_[K(cm.getResult())] = std::move(r);
      })
      .Case<SoftmaxOp>([&](SoftmaxOp sm) {
        Buf r = val(sm.getInput());
        size_t dim = size_t(r.shape.back());
        for (size_t r0 = 0; r0 < r.size(); r0 += dim) {
          float mx = -std::numeric_limits<float>::infinity();
          for (size_t i = 0; i < dim; ++i)
            mx = std::max(mx, r.data[r0 + i]);
          double sum = 0;
          for (size_t i = 0; i < dim; ++i)
            sum += r.data[r0 + i] = std::exp(r.data[r0 + i] - mx);
          for (size_t i = 0; i < dim; ++i)
            r.data[r0 + i] = float(r.data[r0 + i] / sum);
        }
        values_[K(sm.getResult())] = std::move(r);
      })
      .Case<SelectLastOp>([&](SelectLastOp sl) { values_[K(sl.getResult())] = val(sl.getInput()); })
      .Default([&](Operation *o) { unsupported(o, "no backward"); });
}

void Tape::backward(const std::vector<float> &dLogits) {
  Block &body = func_.getBody().front();
  auto ret = cast<func::ReturnOp>(body.getTerminator());
  grads_.clear();
  grads_[K(ret.getOperand(0))] = dLogits;
  for (auto it = body.rbegin(); it != body.rend(); ++it)
    backwardOp(*it);
}

void Tape::backwardOp(Operation &op) {
  // A gradient to a weight lands in its parameter (if trainable); to a value, in grads_.
  auto flow = [&](Value v, const std::vector<float> &g) {
    if (GlobalOp glob = weightGlobal(v)) {
      Param &p = params_[paramIndex_.at(glob)];
      if (!p.grad.empty())
        for (size_t i = 0; i < g.size(); ++i)
          p.grad[i] += g[i];
      return;
    }
    addInto(grads_[K(v)], g);
  };
  auto wants = [&](Value v) {
    if (GlobalOp glob = weightGlobal(v))
      return !params_[paramIndex_.at(glob)].grad.empty();
    return !isa<BlockArgument>(v);
  };
  auto dOut = [&](Value v) -> std::vector<float> * {
    auto it = grads_.find(K(v));
    return it == grads_.end() || it->second.empty() ? nullptr : &it->second;
  };
  llvm::TypeSwitch<Operation *>(&op)
      .Case<WeightOp, func::ReturnOp, EmbeddingOp>([](auto) {}) // tables are not trained
      .Case<LayerNormOp, ResidualLayerNormOp>([&](Operation *o) {
        auto ln = dyn_cast<LayerNormOp>(o);
        auto rl = dyn_cast<ResidualLayerNormOp>(o);
        std::vector<float> *dy = dOut(ln ? ln.getResult() : rl.getNormalized());
        std::vector<float> *dsum = rl ? dOut(rl.getSum()) : nullptr;
        if (!dy && !dsum)
          return;
        Buf x = val(ln ? ln.getInput() : rl.getInput());
        if (rl)
          for (size_t i = 0; i < x.size(); ++i)
            x.data[i] += val(rl.getResidual()).data[i];
        Value gv = ln ? ln.getGamma() : rl.getGamma(), bv = ln ? ln.getBeta() : rl.getBeta();
        const Buf &g = val(gv);
        double eps = (ln ? ln.getEpsilon() : rl.getEpsilon()).convertToDouble();
        size_t dim = size_t(x.shape.back());
        std::vector<float> dx(x.size(), 0.0f), dg(dim, 0.0f), db(dim, 0.0f);
        if (dy)
          for (size_t r0 = 0; r0 < x.size(); r0 += dim) {
            double mean = 0, var = 0;
            for (size_t i = 0; i < dim; ++i)
              mean += x.data[r0 + i];
            mean /= double(dim);
            for (size_t i = 0; i < dim; ++i)
              var += (x.data[r0 + i] - mean) * (x.data[r0 + i] - mean);
            double inv = 1.0 / std::sqrt(var / double(dim) + eps), m1 = 0, m2 = 0;
            for (size_t i = 0; i < dim; ++i) {
              double xhat = (x.data[r0 + i] - mean) * inv, dxhat = (*dy)[r0 + i] * g.data[i];
              m1 += dxhat;
              m2 += dxhat * xhat;
              dg[i] += float((*dy)[r0 + i] * xhat);
              db[i] += (*dy)[r0 + i];
            }
            m1 /= double(dim);
            m2 /= double(dim);
            for (size_t i = 0; i < dim; ++i) {
              double xhat = (x.data[r0 + i] - mean) * inv, dxhat = (*dy)[r0 + i] * g.data[i];
              dx[r0 + i] = float(inv * (dxhat - m1 - xhat * m2));
            }
          }
        if (dsum)
          for (size_t i = 0; i < dx.size(); ++i)
            dx[i] += (*dsum)[i];
        flow(gv, dg);
        flow(bv, db);
        flow(ln ? ln.getInput() : rl.getInput(), dx);
        if (rl)
          flow(rl.getResidual(), dx);
      })
      .Case<LinearOp>([&](LinearOp l) {
        std::vector<float> *dy = dOut(l.getResult());
        if (!dy)
          return;
        const Buf &x = val(l.getInput()), &w = val(l.getWeight());
        int64_t K = w.shape[0], N = w.shape[1], M = int64_t(x.size()) / K;
        std::vector<float> dz = *dy;
        if (auto e = l.getGeluEpilogue()) {
          const std::vector<float> &z = preGelu_.at(l);
          for (size_t i = 0; i < dz.size(); ++i)
            dz[i] *= geluGrad(z[i], *e);
        }
        if (l.getBias() && wants(l.getBias())) {
          std::vector<float> db(size_t(N), 0.0f);
          for (int64_t m = 0; m < M; ++m)
            for (int64_t n = 0; n < N; ++n)
              db[size_t(n)] += dz[size_t(m * N + n)];
          flow(l.getBias(), db);
        }
        if (wants(l.getWeight())) {
          auto q = quantizedInput_.find(l);
          std::vector<float> dw(size_t(K * N));
          gemm(true, false, K, N, M, q == quantizedInput_.end() ? x.data.data() : q->second.data(), dz.data(), dw.data(), false);
          flow(l.getWeight(), dw);
        }
        if (wants(l.getInput())) {
          // Straight through the int8 rounding of the input.
          std::vector<float> dx(x.size());
          gemm(false, true, M, K, N, dz.data(), w.data.data(), dx.data(), false);
          flow(l.getInput(), dx);
        }
      })
      .Case<LMHeadOp>([&](LMHeadOp h) {
        std::vector<float> *dy = dOut(h.getResult());
        if (!dy || !wants(h.getInput()))
          return;
        const Buf &x = val(h.getInput()), &e = val(h.getEmbedding());
        int64_t V = e.shape[0], K = e.shape[1], M = int64_t(x.size()) / K;
        std::vector<float> dx(x.size());
        gemm(false, false, M, K, V, dy->data(), e.data.data(), dx.data(), false);
        flow(h.getInput(), dx);
      })
      .Case<GeluOp>([&](GeluOp g) {
        std::vector<float> *dy = dOut(g.getResult());
        if (!dy)
          return;
        const Buf &z = val(g.getInput());
        std::vector<float> dx(z.size());
        for (size_t i = 0; i < dx.size(); ++i)
          dx[i] = (*dy)[i] * geluGrad(z.data[i], g.getApproximation());
        flow(g.getInput(), dx);
      })
      .Case<AddOp>([&](AddOp a) {
        if (std::vector<float> *dy = dOut(a.getResult())) {
          std::vector<float> d = *dy;
          flow(a.getLhs(), d);
          flow(a.getRhs(), d);
        }
      })
      .Case<ScaleOp>([&](ScaleOp s) {
        if (std::vector<float> *dy = dOut(s.getResult())) {
          std::vector<float> d = *dy;
          float f = float(s.getFactor().convertToDouble());
          for (float &v : d)
            v *= f;
          flow(s.getInput(), d);
        }
      })
      .Case<SplitOp>([&](SplitOp s) {
        const Buf &x = val(s.getInput());
        size_t parts = s.getNumResults(), dim = size_t(x.shape.back()), part = dim / parts, rows = x.size() / dim;
        std::vector<float> dx(x.size(), 0.0f);
        bool any = false;
        for (size_t p = 0; p < parts; ++p)
          if (std::vector<float> *dy = dOut(s.getResult(unsigned(p)))) {
            any = true;
            for (size_t row = 0; row < rows; ++row)
              std::copy_n(&(*dy)[row * part], part, &dx[row * dim + p * part]);
          }
        if (any)
          flow(s.getInput(), dx);
      })
      .Case<SplitHeadsOp>([&](SplitHeadsOp s) {
        std::vector<float> *dy = dOut(s.getResult());
        if (!dy)
          return;
        const Buf &r = val(s.getResult());
        flow(s.getInput(), reorderHeads(*dy, r.shape[1], T_, r.shape[3], false));
      })
      .Case<MergeHeadsOp>([&](MergeHeadsOp m) {
        std::vector<float> *dy = dOut(m.getResult());
        if (!dy)
          return;
        const Buf &x = val(m.getInput());
        flow(m.getInput(), reorderHeads(*dy, x.shape[1], T_, x.shape[3], true));
      })
      .Case<CacheUpdateOp>([&](CacheUpdateOp c) {
        if (std::vector<float> *dy = dOut(c.getResult())) {
          std::vector<float> d = *dy; // straight through an int8 cache's rounding
          flow(c.getUpdate(), d);
        }
      })
      .Case<MatMulOp>([&](MatMulOp mm) {
        std::vector<float> *dy = dOut(mm.getResult());
        if (!dy)
          return;
        const Buf &a = val(mm.getLhs()), &b = val(mm.getRhs());
        int64_t H = a.shape[1], M = a.shape[2], K = a.shape[3];
        bool tr = mm.getTransposeRhs();
        int64_t N = tr ? b.shape[2] : b.shape[3];
        std::vector<float> da(a.size()), dbv(b.size());
        for (int64_t h = 0; h < H; ++h) {
          const float *g = &(*dy)[size_t(h * M * N)];
          // A [M,K] B(op) [K,N]: dA = dC B(op)^T; dB(op) = A^T dC.
          gemm(false, !tr, M, K, N, g, &b.data[size_t(h * K * N)], &da[size_t(h * M * K)], false);
          if (tr) // B stored [N,K]: dB = dC^T A
            gemm(true, false, N, K, M, g, &a.data[size_t(h * M * K)], &dbv[size_t(h * K * N)], false);
          else
            gemm(true, false, K, N, M, &a.data[size_t(h * M * K)], g, &dbv[size_t(h * K * N)], false);
        }
        flow(mm.getLhs(), da);
        flow(mm.getRhs(), dbv);
      })
      .Case<CausalMaskOp>([&](CausalMaskOp cm) {
        std::vector<float> *dy = dOut(cm.getResult());
        if (!dy)
          return;
        std::vector<float> d = *dy;
        const Buf &r = val(cm.getResult());
        int64_t H = r.shape[1], S = r.shape[2], C = r.shape[3];
        for (int64_t h = 0; h < H; ++h)
          for (int64_t s = 0; s < S; ++s)
            for (int64_t c = s + 1; c < C; ++c)
              d[size_t((h * S + s) * C + c)] = 0;
        flow(cm.getScores(), d);
      })
      .Case<SoftmaxOp>([&](SoftmaxOp sm) {
        std::vector<float> *dy = dOut(sm.getResult());
        if (!dy)
          return;
        const Buf &y = val(sm.getResult());
        size_t dim = size_t(y.shape.back());
        std::vector<float> dx(y.size());
        for (size_t r0 = 0; r0 < y.size(); r0 += dim) {
          double dot = 0;
          for (size_t i = 0; i < dim; ++i)
            dot += double((*dy)[r0 + i]) * y.data[r0 + i];
          for (size_t i = 0; i < dim; ++i)
            dx[r0 + i] = float(y.data[r0 + i] * ((*dy)[r0 + i] - dot));
        }
        flow(sm.getInput(), dx);
      })
      .Case<SelectLastOp>([&](SelectLastOp sl) {
        if (std::vector<float> *dy = dOut(sl.getResult())) {
          std::vector<float> d = *dy;
          flow(sl.getInput(), d);
        }
      });
}

} // namespace kiln::kd
