//===- LinearAlgebra.cpp - dense symmetric solves for the pruning passes ---===//
#include "LinearAlgebra.h"

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

} // namespace kiln
