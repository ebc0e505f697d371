//===- QuantSpecUtil.h - building QuantSpecs in the quantization tests -----===//
#ifndef KILN_TEST_UNIT_QUANTSPECUTIL_H
#define KILN_TEST_UNIT_QUANTSPECUTIL_H

#include "kiln/Quant/Quant.h"

namespace kiln::test {

inline QuantSpec spec(WeightFormat format, int64_t group, bool symmetric, int64_t axis) {
  QuantSpec s;
  s.format = format;
  s.groupSize = group;
  s.symmetric = symmetric;
  s.axis = axis;
  return s;
}

} // namespace kiln::test

#endif
