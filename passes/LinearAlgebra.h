//===- LinearAlgebra.h - dense symmetric solves for pruning and distillation ===//
//
// Row-major double matrices; the sizes here are a layer's width (hundreds
// to a few thousand), so plain O(n^3) loops are enough.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_PASSES_LINEARALGEBRA_H
#define KILN_PASSES_LINEARALGEBRA_H

#include <cstddef>
#include <cstdint>
#include <vector>

namespace kiln {

/// Lower Cholesky factor L (L L^T = a) of the n x n matrix `a`; false if
/// `a` is not positive definite.
bool cholesky(const std::vector<double> &a, int64_t n, std::vector<double> &l);

/// Solves a X = b for symmetric positive definite `a` (n x n) and b (n x m),
/// in place in `b`; false if `a` is not positive definite.
bool solveSPD(const std::vector<double> &a, int64_t n, std::vector<double> &b, int64_t m);

/// Adds the rows of `x` ([rows, width]) to the lower triangle of
/// `h` = x^T x (width^2).
void accumulateXtX(std::vector<double> &h, const double *x, size_t rows, int64_t width);

/// Adds the rows of `x` ([rows, width]) to the lower triangle of the Gram
/// matrix of [x 1] (`g`: (width+1)^2, the ones column last), so refits can
/// solve for a bias change too.
void accumulateGram(std::vector<double> &g, const double *x, size_t rows, int64_t width);

/// Copies the lower triangle of `g` (n x n) to the upper and adds `damp`
/// times its mean diagonal to the diagonal.
void symmetrizeAndDamp(std::vector<double> &g, int64_t n, double damp);

/// Least-squares refit of a linear y = x W + b after some of its inputs
/// are removed: with `g` the symmetric Gram matrix of [x 1] (n = width+1,
/// not yet damped) and `w` the dense weight [width, outputs], solves
/// min |[x_S 1] Y - x W| for the kept inputs S (damped by `damp` times the
/// mean diagonal). `solution` is [|S| + 1, outputs]: the kept rows, then
/// the bias change. False if the system is singular.
bool refitKeptRows(const std::vector<double> &g, int64_t width, const std::vector<double> &w, int64_t outputs,
                   const std::vector<int64_t> &kept, double damp, std::vector<double> &solution);

} // namespace kiln

#endif
