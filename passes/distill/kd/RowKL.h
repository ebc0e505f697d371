//===- RowKL.h - one token's KL(teacher || student) and its gradient ------===//
//
// The distillation objective over a vocabulary row, written as plain lane-wise
// arithmetic so it vectorizes (the row is 50k wide and the loss was a third of
// a training step with a libm exp per element and one serial sum).
//
//===----------------------------------------------------------------------===//
#ifndef KILN_PASSES_DISTILL_KD_ROWKL_H
#define KILN_PASSES_DISTILL_KD_ROWKL_H

#include <cstdint>

namespace kiln::kd {

/// KL(softmax(teacher) || softmax(student)) of one row of V logits. With `grad`,
/// also writes g * (p_student - p_teacher), the gradient of g times the KL with
/// respect to the student's logits. `scratch` holds 2V floats. The sums run in 16
/// fixed lanes combined in order: the result does not depend on the thread count.
double rowKL(const float *teacher, const float *student, int64_t V, float *scratch, float g, float *grad);

/// kiln_exp_nonpositive (kiln/Support/ExpNonPositive.h), exposed for its test.
float expNonPositive(float x);

} // namespace kiln::kd

#endif
