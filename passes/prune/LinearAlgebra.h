//===- LinearAlgebra.h - dense symmetric solves for the pruning passes -----===//
//
// Row-major double matrices; the sizes here are a layer's width (hundreds
// to a few thousand), so plain O(n^3) loops are enough.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_PASSES_PRUNE_LINEARALGEBRA_H
#define KILN_PASSES_PRUNE_LINEARALGEBRA_H

#include <cstdint>
#include <vector>

namespace kiln {

/// Lower Cholesky factor L (L L^T = a) of the n x n matrix `a`; false if
/// `a` is not positive definite.
bool cholesky(const std::vector<double> &a, int64_t n, std::vector<double> &l);

/// Solves a X = b for symmetric positive definite `a` (n x n) and b (n x m),
/// in place in `b`; false if `a` is not positive definite.
bool solveSPD(const std::vector<double> &a, int64_t n, std::vector<double> &b, int64_t m);

} // namespace kiln

#endif
