//===- RowKL.cpp - one token's KL(teacher || student) and its gradient ----===//
#include "RowKL.h"

#include "kiln/Support/ExpNonPositive.h"

#include <cmath>

namespace kiln::kd {
namespace {

constexpr int kLanes = 16;

[[gnu::always_inline]] inline float rowMax(const float *x, int64_t V) {
  float m[kLanes];
  for (int j = 0; j < kLanes; ++j)
    m[j] = x[0];
  int64_t v = 0;
  for (; v + kLanes <= V; v += kLanes)
    for (int j = 0; j < kLanes; ++j)
      m[j] = x[v + j] > m[j] ? x[v + j] : m[j];
  float mx = m[0];
  for (int j = 1; j < kLanes; ++j)
    mx = m[j] > mx ? m[j] : mx;
  for (int64_t t = v; t < V; ++t)
    mx = x[t] > mx ? x[t] : mx;
  return mx;
}

/// e^(x - max) into e; returns the sum (double lanes).
[[gnu::always_inline]] inline double expRow(const float *x, int64_t V, float mx, float *e) {
  double s[kLanes] = {};
  int64_t v = 0;
  for (; v + kLanes <= V; v += kLanes)
    for (int j = 0; j < kLanes; ++j) {
      e[v + j] = kiln_exp_nonpositive(x[v + j] - mx);
      s[j] += double(e[v + j]);
    }
  double sum = 0;
  for (int j = 0; j < kLanes; ++j)
    sum += s[j];
  for (; v < V; ++v)
    sum += double(e[v] = kiln_exp_nonpositive(x[v] - mx));
  return sum;
}

[[gnu::always_inline]] inline double rowKLBody(const float *tl, const float *sl, int64_t V, float *scratch, float g,
                                               float *grad) {
  float *te = scratch, *se = scratch + V;
  float mt = rowMax(tl, V), ms = rowMax(sl, V);
  double st = expRow(tl, V, mt, te), ss = expRow(sl, V, ms, se);
  // log p = x - max - log(sum); KL = sum p_t (log p_t - log p_s); dKL/dx_s = p_s - p_t.
  const double shift = double(ms) + std::log(ss) - double(mt) - std::log(st);
  const float it = float(1.0 / st), is = float(1.0 / ss);
  double acc[kLanes] = {};
  int64_t v = 0;
  for (; v + kLanes <= V; v += kLanes)
    for (int j = 0; j < kLanes; ++j) {
      float pt = te[v + j] * it;
      acc[j] += double(pt) * (double(tl[v + j] - sl[v + j]) + shift);
    }
  if (grad)
    for (int64_t i = 0; i < V; ++i)
      grad[i] = g * (se[i] * is - te[i] * it);
  double kl = 0;
  for (int j = 0; j < kLanes; ++j)
    kl += acc[j];
  for (; v < V; ++v) {
    float pt = te[v] * it;
    kl += double(pt) * (double(tl[v] - sl[v]) + shift);
  }
  return kl;
}

[[gnu::target("avx512f,avx512dq,avx2,fma")]] double rowKLAvx512(const float *tl, const float *sl, int64_t V,
                                                                float *scratch, float g, float *grad) {
  return rowKLBody(tl, sl, V, scratch, g, grad);
}

double rowKLGeneric(const float *tl, const float *sl, int64_t V, float *scratch, float g, float *grad) {
  return rowKLBody(tl, sl, V, scratch, g, grad);
}

} // namespace

double rowKL(const float *teacher, const float *student, int64_t V, float *scratch, float g, float *grad) {
  static const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
  return avx512 ? rowKLAvx512(teacher, student, V, scratch, g, grad)
                : rowKLGeneric(teacher, student, V, scratch, g, grad);
}

float expNonPositive(float x) { return kiln_exp_nonpositive(x); }

} // namespace kiln::kd
