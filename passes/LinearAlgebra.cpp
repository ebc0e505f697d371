//===- LinearAlgebra.cpp - dense symmetric solves for pruning, distillation ===//
#include "LinearAlgebra.h"

#include <algorithm>
#include <cmath>

namespace kiln {

bool cholesky(const std::vector<double> &a, int64_t n, std::vector<double> &l) {
  l.assign(size_t(n * n), 0.0);
  for (int64_t j = 0; j < n; ++j) {
    double d = a[size_t(j * n + j)];
    for (int64_t p = 0; p < j; ++p)
      d -= l[size_t(j * n + p)] * l[size_t(j * n + p)];
    if (!(d > 0))
      return false;
    double ljj = std::sqrt(d);
    l[size_t(j * n + j)] = ljj;
    for (int64_t i = j + 1; i < n; ++i) {
      double s = a[size_t(i * n + j)];
      for (int64_t p = 0; p < j; ++p)
        s -= l[size_t(i * n + p)] * l[size_t(j * n + p)];
      l[size_t(i * n + j)] = s / ljj;
    }
  }
  return true;
}

bool solveSPD(const std::vector<double> &a, int64_t n, std::vector<double> &b, int64_t m) {
  std::vector<double> l;
  if (!cholesky(a, n, l))
    return false;
  for (int64_t c = 0; c < m; ++c) {
    for (int64_t i = 0; i < n; ++i) { // L y = b
      double s = b[size_t(i * m + c)];
      for (int64_t p = 0; p < i; ++p)
        s -= l[size_t(i * n + p)] * b[size_t(p * m + c)];
      b[size_t(i * m + c)] = s / l[size_t(i * n + i)];
    }
    for (int64_t i = n - 1; i >= 0; --i) { // L^T x = y
      double s = b[size_t(i * m + c)];
      for (int64_t p = i + 1; p < n; ++p)
        s -= l[size_t(p * n + i)] * b[size_t(p * m + c)];
      b[size_t(i * m + c)] = s / l[size_t(i * n + i)];
    }
  }
  return true;
}

namespace {
/// g[i][j] += row[i] row[j] for j <= i < width, g with row stride `stride`.
void addOuterLower(double *g, int64_t stride, const double *row, int64_t width) {
  for (int64_t i = 0; i < width; ++i) {
    double xi = row[i];
    if (xi == 0)
      continue;
    double *gi = g + i * stride;
    for (int64_t j = 0; j <= i; ++j)
      gi[j] += xi * row[j];
  }
}
} // namespace

void accumulateXtX(std::vector<double> &h, const double *x, size_t rows, int64_t width) {
  for (size_t r = 0; r < rows; ++r)
    addOuterLower(h.data(), width, x + r * size_t(width), width);
}

void accumulateGram(std::vector<double> &g, const double *x, size_t rows, int64_t width) {
  int64_t n = width + 1;
  for (size_t r = 0; r < rows; ++r) {
    const double *row = x + r * size_t(width);
    addOuterLower(g.data(), n, row, width);
    double *ones = g.data() + width * n; // the ones column's row: column sums and the count
    for (int64_t j = 0; j < width; ++j)
      ones[j] += row[j];
    ones[width] += 1.0;
  }
}

void symmetrizeAndDamp(std::vector<double> &g, int64_t n, double damp) {
  double mean = 0;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = i + 1; j < n; ++j)
      g[size_t(i * n + j)] = g[size_t(j * n + i)];
    mean += g[size_t(i * n + i)];
  }
  mean /= double(n);
  for (int64_t i = 0; i < n; ++i)
    g[size_t(i * n + i)] += damp * mean;
}

bool refitKeptRows(const std::vector<double> &g, int64_t width, const std::vector<double> &w, int64_t outputs,
                   const std::vector<int64_t> &kept, double damp, std::vector<double> &solution) {
  int64_t n = width + 1, s = int64_t(kept.size()) + 1;
  std::vector<int64_t> sel(kept);
  sel.push_back(width); // the ones column
  // Normal equations: G[S, S] Y = G[S, :width] W.
  std::vector<double> lhs(size_t(s * s));
  for (int64_t i = 0; i < s; ++i)
    for (int64_t j = 0; j < s; ++j)
      lhs[size_t(i * s + j)] = g[size_t(sel[size_t(i)] * n + sel[size_t(j)])];
  symmetrizeAndDamp(lhs, s, damp);
  solution.assign(size_t(s * outputs), 0.0);
  for (int64_t i = 0; i < s; ++i) {
    double *yi = solution.data() + i * outputs;
    for (int64_t k = 0; k < width; ++k) {
      double gik = g[size_t(sel[size_t(i)] * n + k)];
      if (gik == 0)
        continue;
      const double *wk = w.data() + k * outputs;
      for (int64_t e = 0; e < outputs; ++e)
        yi[e] += gik * wk[e];
    }
  }
  return solveSPD(lhs, s, solution, outputs);
}

} // namespace kiln
