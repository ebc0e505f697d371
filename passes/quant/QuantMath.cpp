//===- QuantMath.cpp - weight quantization formats and their exact math ---===//
#include "kiln/Quant/Quant.h"

#include "kiln/Support/Error.h"
#include "kiln/Support/Float16.h"

#include <algorithm>
#include <cmath>

namespace kiln {

std::string QuantSpec::name() const {
  switch (format) {
  case WeightFormat::F32:
    return "f32";
  case WeightFormat::F16:
    return "f16";
  case WeightFormat::BF16:
    return "bf16";
  case WeightFormat::Int8:
  case WeightFormat::Int4: {
    std::string n = format == WeightFormat::Int8 ? "int8" : "int4";
    if (groupSize > 0)
      n += "-g" + std::to_string(groupSize);
    return n + (symmetric ? "-sym" : "-asym");
  }
  }
  return "?";
}

bool parseWeightFormat(const std::string &name, WeightFormat &format) {
  static const std::pair<const char *, WeightFormat> names[] = {{"f32", WeightFormat::F32},
                                                               {"f16", WeightFormat::F16},
                                                               {"bf16", WeightFormat::BF16},
                                                               {"int8", WeightFormat::Int8},
                                                               {"int4", WeightFormat::Int4}};
  for (const auto &[n, f] : names)
    if (name == n) {
      format = f;
      return true;
    }
  return false;
}

namespace {
float roundHalfEven(float v) { return std::nearbyint(v); } // the default rounding mode: ties to even
} // namespace

QuantizedMatrix quantizeMatrix(const float *w, int64_t rows, int64_t cols, const QuantSpec &spec) {
  if (!spec.isInteger())
    throw Error("quantizeMatrix: " + spec.name() + " is not an integer format");
  if (spec.axis != 0 && spec.axis != 1)
    throw Error("quantizeMatrix: axis must be 0 or 1");
  if (spec.format == WeightFormat::Int8 && !spec.symmetric)
    throw Error("quantizeMatrix: int8 is symmetric only");
  QuantizedMatrix m;
  m.rows = rows;
  m.cols = cols;
  const int64_t length = spec.axis == 0 ? rows : cols; // reduction axis
  m.channels = spec.axis == 0 ? cols : rows;
  const int64_t group = spec.groupSize > 0 ? spec.groupSize : length;
  if (spec.groupSize < 0)
    throw Error("quantizeMatrix: group size must be >= 0");
  m.groups = (length + group - 1) / group;
  if (!spec.scales.empty() && (!spec.symmetric || int64_t(spec.scales.size()) != m.channels * m.groups))
    throw Error("quantizeMatrix: explicit scales need a symmetric format and " + std::to_string(m.channels * m.groups) +
                " of them");
  m.q.assign(size_t(rows * cols), 0);
  m.scale.assign(size_t(m.channels * m.groups), 0.0f);
  m.zero.assign(size_t(m.channels * m.groups), 0);
  auto at = [&](int64_t ch, int64_t k) { return spec.axis == 0 ? k * cols + ch : ch * cols + k; };
  const bool int8 = spec.format == WeightFormat::Int8;
  for (int64_t ch = 0; ch < m.channels; ++ch)
    for (int64_t g = 0; g < m.groups; ++g) {
      int64_t k0 = g * group, k1 = std::min(length, k0 + group);
      float amax = 0, mn = w[at(ch, k0)], mx = mn;
      for (int64_t k = k0; k < k1; ++k) {
        float v = w[at(ch, k)];
        amax = std::max(amax, std::fabs(v));
        mn = std::min(mn, v);
        mx = std::max(mx, v);
      }
      size_t s = size_t(ch * m.groups + g);
      if (spec.symmetric) {
        float qmax = int8 ? 127.0f : 7.0f, qmin = int8 ? -127.0f : -8.0f;
        float scale = spec.scales.empty() ? amax / qmax : spec.scales[s];
        m.scale[s] = scale;
        for (int64_t k = k0; k < k1; ++k)
          m.q[size_t(at(ch, k))] =
              scale == 0 ? 0 : int8_t(std::clamp(roundHalfEven(w[at(ch, k)] / scale), qmin, qmax));
      } else if (mx == mn) {
        m.scale[s] = mx;
        for (int64_t k = k0; k < k1; ++k)
          m.q[size_t(at(ch, k))] = 1;
      } else {
        float scale = (mx - mn) / 15.0f;
        float zero = std::clamp(roundHalfEven(-mn / scale), 0.0f, 15.0f);
        m.scale[s] = scale;
        m.zero[s] = int8_t(zero);
        for (int64_t k = k0; k < k1; ++k)
          m.q[size_t(at(ch, k))] = int8_t(std::clamp(roundHalfEven(w[at(ch, k)] / scale) + zero, 0.0f, 15.0f));
      }
    }
  return m;
}

float dequantizedAt(const QuantizedMatrix &m, const QuantSpec &spec, int64_t r, int64_t c) {
  int64_t ch = spec.axis == 0 ? c : r, k = spec.axis == 0 ? r : c;
  int64_t length = spec.axis == 0 ? m.rows : m.cols;
  int64_t group = spec.groupSize > 0 ? spec.groupSize : length;
  size_t s = size_t(ch * m.groups + k / group);
  return float(int(m.q[size_t(r * m.cols + c)]) - int(m.zero[s])) * m.scale[s];
}

std::vector<float> quantizeDequantize(const float *w, int64_t rows, int64_t cols, const QuantSpec &spec) {
  std::vector<float> out(size_t(rows * cols));
  switch (spec.format) {
  case WeightFormat::F32:
    std::copy(w, w + out.size(), out.begin());
    break;
  case WeightFormat::F16:
    for (size_t i = 0; i < out.size(); ++i)
      out[i] = halfToFloat(floatToHalf(w[i]));
    break;
  case WeightFormat::BF16:
    for (size_t i = 0; i < out.size(); ++i)
      out[i] = bf16ToFloat(floatToBf16(w[i]));
    break;
  case WeightFormat::Int8:
  case WeightFormat::Int4: {
    QuantizedMatrix m = quantizeMatrix(w, rows, cols, spec);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c)
        out[size_t(r * cols + c)] = dequantizedAt(m, spec, r, c);
    break;
  }
  }
  return out;
}

float quantizeActivationRow(const float *x, int64_t K, float staticScale, int8_t *q) {
  float scale = staticScale;
  if (!(scale > 0)) {
    float amax = 0;
    for (int64_t k = 0; k < K; ++k)
      amax = std::max(amax, std::fabs(x[k]));
    scale = amax / 127.0f;
  }
  for (int64_t k = 0; k < K; ++k)
    q[k] = scale == 0 ? 0 : int8_t(std::clamp(roundHalfEven(x[k] / scale), -127.0f, 127.0f));
  return scale;
}

} // namespace kiln
