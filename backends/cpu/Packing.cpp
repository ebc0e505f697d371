//===- Packing.cpp - integer weight layouts of the cpu kernels -------------===//
#include "Packing.h"

#include "kiln/Support/Error.h"
#include "kiln/Support/Float16.h"

#include "kernels/KernelABI.h"

#include <cmath>
#include <cstring>
#include <string>

namespace kiln::cpu {

namespace {
int64_t panels(int64_t n) { return (n + KILN_PANEL - 1) / KILN_PANEL; }

/// K (reduction length), N (channels) and element (k, n) of a quantized matrix.
struct View {
  const QuantizedMatrix &m;
  bool transposed;
  int64_t K, N;
  View(const QuantizedMatrix &m, const QuantSpec &spec)
      : m(m), transposed(spec.axis == 1), K(transposed ? m.cols : m.rows), N(transposed ? m.rows : m.cols) {}
  int8_t q(int64_t k, int64_t n) const { return m.q[size_t(transposed ? n * K + k : k * N + n)]; }
};

void requireInt4Chunks(const View &v, const QuantSpec &spec) {
  int64_t group = spec.groupSize > 0 ? spec.groupSize : v.K;
  if (v.K % 32 != 0 || group % 32 != 0)
    throw Error(spec.name() + " with " + std::to_string(v.K) +
                " inputs: the int4 kernels need inputs and groups in multiples of 32");
}
} // namespace

PackedQ8 packQ8Panels(const QuantizedMatrix &m, const QuantSpec &spec) {
  View v(m, spec);
  PackedQ8 p;
  p.data.assign(size_t(panels(v.N) * v.K * KILN_PANEL), 0);
  for (int64_t n = 0; n < v.N; ++n)
    for (int64_t k = 0; k < v.K; ++k)
      p.data[size_t(((n / KILN_PANEL) * v.K + k) * KILN_PANEL + n % KILN_PANEL)] = v.q(k, n);
  p.scales.assign(size_t(panels(v.N) * KILN_PANEL), 0.0f);
  std::copy(m.scale.begin(), m.scale.end(), p.scales.begin());
  return p;
}

PackedQ8x4 packQ8x4(const QuantizedMatrix &m, const QuantSpec &spec) {
  View v(m, spec);
  int64_t Kp = (v.K + 3) / 4 * 4;
  PackedQ8x4 p;
  p.data.assign(size_t(panels(v.N) * Kp * KILN_PANEL), 0);
  p.sums.assign(size_t(panels(v.N) * KILN_PANEL), 0);
  for (int64_t n = 0; n < v.N; ++n)
    for (int64_t k = 0; k < v.K; ++k) {
      int8_t q = v.q(k, n);
      p.data[size_t(((n / KILN_PANEL) * Kp + k / 4 * 4) * KILN_PANEL + (n % KILN_PANEL) * 4 + k % 4)] = q;
      p.sums[size_t(n)] += 128 * q;
    }
  p.scales.assign(size_t(panels(v.N) * KILN_PANEL), 0.0f);
  std::copy(m.scale.begin(), m.scale.end(), p.scales.begin());
  return p;
}

PackedQ4 packQ4Rows(const QuantizedMatrix &m, const QuantSpec &spec) {
  View v(m, spec);
  requireInt4Chunks(v, spec);
  PackedQ4 p;
  p.data.assign(size_t(v.N * v.K / 2), 0);
  for (int64_t n = 0; n < v.N; ++n)
    for (int64_t k = 0; k < v.K; ++k) {
      // Symmetric values -8..7 are stored as u = q + 8 with zero point 8.
      uint8_t u = uint8_t(v.q(k, n) + (spec.symmetric ? 8 : 0));
      int64_t i = k % 32;
      p.data[size_t(n * v.K / 2 + k / 32 * 16 + i % 16)] |= uint8_t(i < 16 ? u : u << 4);
    }
  p.params.assign(size_t(v.N * m.groups * 2), 0.0f);
  for (int64_t n = 0; n < v.N; ++n)
    for (int64_t g = 0; g < m.groups; ++g) {
      size_t s = size_t(n * m.groups + g);
      p.params[2 * s] = m.scale[s];
      p.params[2 * s + 1] = spec.symmetric ? 8.0f : float(m.zero[s]);
    }
  return p;
}

PackedQ4x4 packQ4x4(const QuantizedMatrix &m, const QuantSpec &spec) {
  View v(m, spec);
  requireInt4Chunks(v, spec);
  int64_t chunks = v.K / 32;
  PackedQ4x4 p;
  p.data.assign(size_t(panels(v.N) * chunks * 256), 0);
  for (int64_t n = 0; n < v.N; ++n)
    for (int64_t k = 0; k < v.K; ++k) {
      uint8_t u = uint8_t(v.q(k, n) + (spec.symmetric ? 8 : 0));
      int64_t i = k % 32, block = i / 8, t = i % 4;
      bool high = (i % 8) >= 4;
      p.data[size_t(((n / KILN_PANEL) * chunks + k / 32) * 256 + block * 64 + (n % KILN_PANEL) * 4 + t)] |=
          uint8_t(high ? u << 4 : u);
    }
  p.scales.assign(size_t(panels(v.N) * m.groups * KILN_PANEL), 0.0f);
  if (!spec.symmetric)
    p.zeros.assign(p.scales.size(), 0);
  for (int64_t n = 0; n < v.N; ++n)
    for (int64_t g = 0; g < m.groups; ++g) {
      size_t dst = size_t(((n / KILN_PANEL) * m.groups + g) * KILN_PANEL + n % KILN_PANEL);
      p.scales[dst] = m.scale[size_t(n * m.groups + g)];
      if (!spec.symmetric)
        p.zeros[dst] = m.zero[size_t(n * m.groups + g)];
    }
  return p;
}

std::vector<uint8_t> packSparse24(const std::vector<float> &w, int64_t K, int64_t N) {
  int64_t groups = (K + 3) / 4;
  std::vector<uint8_t> packed(size_t(panels(N) * groups * KILN_S24_GROUP_BYTES), 0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t g = 0; g < groups; ++g) {
      uint8_t *grp = &packed[size_t(((n / KILN_PANEL) * groups + g) * KILN_S24_GROUP_BYTES)];
      int64_t j = n % KILN_PANEL, slot = 0;
      for (int64_t t = 0; t < 4 && 4 * g + t < K; ++t) {
        float v = w[size_t((4 * g + t) * N + n)];
        if (v == 0)
          continue;
        if (slot == 2)
          throw Error("not 2:4 sparse: inputs " + std::to_string(4 * g) + ".." + std::to_string(4 * g + 3) +
                      " of output " + std::to_string(n) + " hold more than 2 nonzeros");
        std::memcpy(grp + (slot * KILN_PANEL + j) * 4, &v, 4);
        grp[128 + j] |= uint8_t(t << (2 * slot));
        ++slot;
      }
    }
  return packed;
}

std::vector<uint16_t> packBF16x2(const float *w, int64_t K, int64_t N, bool transposed) {
  int64_t Kh = (K + 1) / 2;
  std::vector<uint16_t> packed(size_t(panels(N) * Kh * KILN_PANEL * 2), 0);
  for (int64_t k = 0; k < K; ++k)
    for (int64_t n = 0; n < N; ++n) {
      float v = transposed ? w[n * K + k] : w[k * N + n];
      uint16_t b = std::fpclassify(v) == FP_SUBNORMAL ? uint16_t(std::signbit(v) ? 0x8000 : 0) : floatToBf16(v);
      packed[size_t(((n / KILN_PANEL * Kh + k / 2) * KILN_PANEL + n % KILN_PANEL) * 2 + k % 2)] = b;
    }
  return packed;
}

} // namespace kiln::cpu
