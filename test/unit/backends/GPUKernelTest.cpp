//===- GPUKernelTest.cpp - the GPU kernel library on a Vulkan device -------===//
//
// Each kernel template is instantiated for both capability profiles,
// lowered to SPIR-V (and, where spirv-val is installed, validated for
// Vulkan 1.3), then run on the first Vulkan device here (lavapipe in CI)
// against the reference's math in double precision.
//
//===----------------------------------------------------------------------===//
#include "KernelLibrary.h"
#include "VulkanDevice.h"

#include "kiln/Support/Error.h"
#include "kiln/Support/Float16.h"
#include "kiln/Quant/Quant.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <random>

using namespace kiln;

namespace {

std::vector<float> randomValues(size_t n, unsigned seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (float &x : v)
    x = d(rng);
  return v;
}

/// spirv-val --target-env vulkan1.3 on the words; skipped (true) without spirv-val.
bool spirvValid(const std::vector<uint32_t> &words, std::string &output) {
  if (std::system("command -v spirv-val > /dev/null 2>&1") != 0)
    return true;
  auto path = std::filesystem::temp_directory_path() / "kiln-gpu-kernel-test.spv";
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char *>(words.data()), long(words.size() * 4));
  std::string cmd = "spirv-val --target-env vulkan1.3 " + path.string() + " 2>&1";
  FILE *p = popen(cmd.c_str(), "r");
  char buf[512];
  while (p && fgets(buf, sizeof buf, p))
    output += buf;
  return p && pclose(p) == 0;
}

// The attention test's shapes: 3 heads of 32, a context of 48, 4 query rows.
constexpr int64_t kH = 3, kD = 32, kC = 48, kS = 4, kE = kH * kD;

std::vector<gpu::KernelInstance> instances(int64_t n, int64_t count) {
  std::map<std::string, std::string> attn = {{"H", std::to_string(kH)},       {"D", std::to_string(kD)},
                                             {"C", std::to_string(kC)},       {"HD", std::to_string(kE)},
                                             {"Q_STRIDE", std::to_string(3 * kE)}, {"Q_OFFSET", "0"},
                                             {"SCALE", "0.17677669529663687"}, {"KV", "f32"}};
  auto keys = attn, values = attn;
  keys["OFFSET"] = std::to_string(kE);
  values["OFFSET"] = std::to_string(2 * kE);
  return {{"layer_norm.mlir", {{"N", std::to_string(n)}, {"EPS", "1.0e-05"}}, "", ""},
          {"elementwise.mlir", {{"COUNT", std::to_string(count)}}, "", "add"},
          {"elementwise.mlir", {{"COUNT", std::to_string(count)}, {"GELU", "tanh"}}, "", "gelu"},
          {"elementwise.mlir", {{"K", std::to_string(n)}, {"SCALE", "0.0"}}, "", "quantize_rows"},
          {"linear.mlir", {{"K", "96"}, {"N", "200"}, {"M", "3"}, {"GELU", "tanh"}, {"W_FORMAT", "f32"}, {"W_COLS", "200"}}, "", ""},
          {"attention.mlir", attn, "", "attention"},
          {"attention.mlir", keys, "", "cache_write"},
          {"attention.mlir", values, "_v", "cache_write"},
          {"lm_head.mlir", {{"V", "1009"}, {"V0", "0"}, {"E", "64"}, {"W_FORMAT", "f32"}, {"W_COLS", "64"}, {"CHUNK", "256"}, {"PARTS", "4"}}, "", ""}};
}

} // namespace

TEST(GPUKernels, LowerToValidSPIRVForEveryProfile) {
  for (const char *name : {"lavapipe", "desktop"}) {
    const gpu::Profile &p = gpu::profile(name);
    std::vector<uint32_t> words = gpu::compileToSPIRV(gpu::kernelModule(instances(96, 1000), p));
    ASSERT_GT(words.size(), 5u);
    EXPECT_EQ(words[0], 0x07230203u) << "SPIR-V magic";
    std::string output;
    EXPECT_TRUE(spirvValid(words, output)) << name << ": " << output;
  }
  EXPECT_THROW(gpu::profile("tpu"), Error);
  EXPECT_THROW(gpu::kernelModule({{"layer_norm.mlir", {}, "", ""}}, gpu::profile("lavapipe")), Error); // N unset
}

class OnDevice : public ::testing::Test {
protected:
  void SetUp() override {
    std::string why;
    if (!vk::Device::available(&why))
      GTEST_SKIP() << "no Vulkan device: " << why;
    device = vk::Device::open(0);
    std::printf("device: %s (%s), subgroup %u, max storage buffer %llu bytes\n", device->info().name.c_str(),
                device->info().driver.c_str(), device->info().subgroupSize,
                (unsigned long long)device->info().maxStorageBufferRange);
  }
  std::unique_ptr<vk::Buffer> upload(const std::vector<float> &v) {
    auto b = device->buffer(v.size() * 4);
    b->write(v.data(), v.size() * 4);
    return b;
  }
  static std::vector<float> download(const vk::Buffer &b) {
    std::vector<float> v(b.size() / 4);
    b.read(v.data(), b.size());
    return v;
  }
  std::unique_ptr<vk::Device> device;
};

TEST_F(OnDevice, LayerNormMatchesTheReference) {
  // 96 (not a multiple of the workgroup) and 768 (GPT-2's width) wide rows.
  for (int64_t n : {96, 768}) {
    const int64_t rows = 5;
    std::vector<uint32_t> spirv = gpu::compileToSPIRV(gpu::kernelModule(instances(n, 1), gpu::profile("lavapipe")));
    auto kernel = device->kernel(spirv, "layer_norm", 4);
    std::vector<float> x = randomValues(size_t(rows * n), 1, 3.0f), g = randomValues(size_t(n), 2),
                       b = randomValues(size_t(n), 3);
    for (float &v : x)
      v += 1.5f; // a mean far from 0
    auto bx = upload(x), bg = upload(g), bb = upload(b), by = device->buffer(uint64_t(rows * n) * 4);
    device->run(*kernel, {bx.get(), bg.get(), bb.get(), by.get()}, uint32_t(rows));
    std::vector<float> y = download(*by);
    double worst = 0;
    for (int64_t r = 0; r < rows; ++r) {
      double mean = 0, var = 0;
      for (int64_t k = 0; k < n; ++k)
        mean += x[size_t(r * n + k)];
      mean /= double(n);
      for (int64_t k = 0; k < n; ++k)
        var += (x[size_t(r * n + k)] - mean) * (x[size_t(r * n + k)] - mean);
      var /= double(n);
      for (int64_t k = 0; k < n; ++k) {
        double want = (x[size_t(r * n + k)] - mean) / std::sqrt(var + 1e-5) * g[size_t(k)] + b[size_t(k)];
        worst = std::max(worst, std::fabs(y[size_t(r * n + k)] - want));
      }
    }
    EXPECT_LT(worst, 1e-5) << "n=" << n;
  }
}

TEST_F(OnDevice, ElementwiseKernelsMatchTheReference) {
  const int64_t count = 1000; // not a multiple of the workgroup
  std::vector<uint32_t> spirv = gpu::compileToSPIRV(gpu::kernelModule(instances(96, count), gpu::profile("lavapipe")));
  auto add = device->kernel(spirv, "add", 3);
  auto gelu = device->kernel(spirv, "gelu", 2);
  std::vector<float> a = randomValues(count, 4, 2.0f), b = randomValues(count, 5);
  auto ba = upload(a), bb = upload(b), by = device->buffer(count * 4), bz = device->buffer(count * 4);
  uint32_t groups = uint32_t((count + 63) / 64);
  device->run(*add, {ba.get(), bb.get(), by.get()}, groups);
  device->run(*gelu, {ba.get(), bz.get()}, groups);
  std::vector<float> y = download(*by), z = download(*bz);
  double worstGelu = 0;
  for (int64_t i = 0; i < count; ++i) {
    EXPECT_EQ(y[size_t(i)], a[size_t(i)] + b[size_t(i)]);
    double v = a[size_t(i)];
    double want = 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
    worstGelu = std::max(worstGelu, std::fabs(z[size_t(i)] - want) / std::max(1.0, std::fabs(want)));
  }
  EXPECT_LT(worstGelu, 1e-5);
  // The exact GELU, erf in arith (Abramowitz-Stegun 7.1.26), over [-6, 6].
  std::vector<uint32_t> erfSpirv = gpu::compileToSPIRV(gpu::kernelModule(
      {{"elementwise.mlir", {{"COUNT", std::to_string(count)}, {"GELU", "erf"}}, "", "gelu"}}, gpu::profile("lavapipe")));
  auto geluErf = device->kernel(erfSpirv, "gelu", 2);
  std::vector<float> xs(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i)
    xs[size_t(i)] = -6.0f + 12.0f * float(i) / float(count - 1);
  auto bxs = upload(xs);
  device->run(*geluErf, {bxs.get(), bz.get()}, groups);
  z = download(*bz);
  double worstErf = 0;
  for (int64_t i = 0; i < count; ++i) {
    double v = xs[size_t(i)], want = 0.5 * v * (1 + std::erf(v / std::sqrt(2.0)));
    worstErf = std::max(worstErf, std::fabs(z[size_t(i)] - want));
  }
  EXPECT_LT(worstErf, 1e-6);
}

TEST_F(OnDevice, LinearMatchesTheReference) {
  const int64_t M = 3, K = 96, N = 200; // N not a multiple of the workgroup
  std::vector<uint32_t> spirv = gpu::compileToSPIRV(gpu::kernelModule(instances(96, 1), gpu::profile("lavapipe")));
  std::vector<float> x = randomValues(M * K, 6), w = randomValues(K * N, 7, 0.2f), b = randomValues(N, 8);
  auto bx = upload(x), bw = upload(w), bb = upload(b);
  for (const char *entry : {"linear", "linear_gelu"}) {
    auto kernel = device->kernel(spirv, entry, 4);
    auto by = device->buffer(M * N * 4);
    device->run(*kernel, {bx.get(), bw.get(), bb.get(), by.get()}, uint32_t((N + 63) / 64), uint32_t(M));
    std::vector<float> y = download(*by);
    double worst = 0;
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        double want = b[size_t(n)];
        for (int64_t k = 0; k < K; ++k)
          want += double(x[size_t(m * K + k)]) * w[size_t(k * N + n)];
        if (std::string(entry) == "linear_gelu")
          want = 0.5 * want * (1 + std::tanh(std::sqrt(2 / M_PI) * (want + 0.044715 * want * want * want)));
        worst = std::max(worst, std::fabs(y[size_t(m * N + n)] - want) / std::max(1.0, std::fabs(want)));
      }
    EXPECT_LT(worst, 1e-5) << entry;
  }
}

// The prefill form (four rows per thread) sums as the one-row kernel does: bit for bit the same
// outputs, for a row count that is not a multiple of four, with and without GELU.
TEST_F(OnDevice, FourRowLinearEqualsTheOneRowKernelBitForBit) {
  const int64_t M = 7, K = 96, N = 200;
  std::vector<float> x = randomValues(M * K, 16), w = randomValues(K * N, 17, 0.2f), b = randomValues(N, 18);
  auto bx = upload(x), bw = upload(w), bb = upload(b);
  for (const char *gelu : {"none", "tanh", "erf"}) {
    std::map<std::string, std::string> p = {{"K", std::to_string(K)}, {"N", std::to_string(N)}, {"M", std::to_string(M)},
                                            {"GELU", gelu}, {"W_FORMAT", "f32"}, {"W_COLS", std::to_string(N)}};
    std::string one = std::string(gelu) != "none" ? "linear_gelu" : "linear";
    std::vector<uint32_t> spirv = gpu::compileToSPIRV(gpu::kernelModule(
        {{"linear.mlir", p, "", "linear_rows4"}, {"linear.mlir", p, "", one}}, gpu::profile("lavapipe")));
    auto rows4 = device->kernel(spirv, "linear_rows4", 4), single = device->kernel(spirv, one, 4);
    auto y4 = device->buffer(M * N * 4), y1 = device->buffer(M * N * 4);
    device->run(*rows4, {bx.get(), bw.get(), bb.get(), y4.get()}, uint32_t((N + 63) / 64), uint32_t((M + 3) / 4));
    device->run(*single, {bx.get(), bw.get(), bb.get(), y1.get()}, uint32_t((N + 63) / 64), uint32_t(M));
    std::vector<float> a = download(*y4), c = download(*y1);
    EXPECT_EQ(std::memcmp(a.data(), c.data(), a.size() * 4), 0) << "GELU " << gelu;
  }
}

// The storage formats decoded in registers (WLOAD), bit for bit: a K = 1 linear with x = 1
// and no bias returns each weight as the kernel decoded it.
TEST_F(OnDevice, WeightFormatsDecodeExactly) {
  const int64_t N = 11;
  auto run = [&](const std::map<std::string, std::string> &w, const std::vector<uint32_t> &words,
                 const std::vector<float> &scales, const std::vector<float> &zeros) {
    std::map<std::string, std::string> params = {{"K", "1"}, {"N", std::to_string(N)}};
    params.insert(w.begin(), w.end());
    std::vector<uint32_t> spirv =
        gpu::compileToSPIRV(gpu::kernelModule({{"linear.mlir", params, "", "linear"}}, gpu::profile("lavapipe")));
    bool q = !scales.empty();
    auto kernel = device->kernel(spirv, "linear", q ? 6 : 4);
    auto bx = upload({1.0f}), bb = upload(std::vector<float>(N, 0.0f)), by = device->buffer(N * 4);
    auto bw = device->buffer(words.size() * 4);
    bw->write(words.data(), words.size() * 4);
    std::vector<vk::Buffer *> buffers = {bx.get(), bw.get()};
    std::unique_ptr<vk::Buffer> bs, bz;
    if (q) {
      bs = upload(scales);
      bz = upload(zeros);
      buffers.push_back(bs.get());
      buffers.push_back(bz.get());
    }
    buffers.push_back(bb.get());
    buffers.push_back(by.get());
    device->run(*kernel, buffers, 1);
    return download(*by);
  };
  // f16: zeros, subnormals, the largest normal, infinities.
  std::vector<uint16_t> halves = {0x0000, 0x8000, 0x3c00, 0x0001, 0x83ff, 0x0400, 0x7bff, 0xfc00, 0x7c00, 0xc000, 0x3555};
  std::vector<uint32_t> words((N + 1) / 2, 0);
  for (int64_t n = 0; n < N; ++n)
    words[size_t(n / 2)] |= uint32_t(halves[size_t(n)]) << (16 * (n % 2));
  std::vector<float> y = run({{"W_FORMAT", "f16"}, {"W_WORDS", std::to_string(words.size())}}, words, {}, {});
  for (int64_t n = 0; n < N; ++n) {
    float want = halfToFloat(halves[size_t(n)]);
    uint32_t got, expected;
    std::memcpy(&got, &y[size_t(n)], 4);
    std::memcpy(&expected, &want, 4);
    // -0 decodes to -0, then 0 + 1 * -0 accumulates to +0: zeros compare as values.
    EXPECT_TRUE(got == expected || (want == 0 && y[size_t(n)] == 0))
        << "f16 0x" << std::hex << halves[size_t(n)] << ": " << y[size_t(n)];
  }
  // int4, asymmetric (0..15) in groups of one channel each: (q - zero) * scale.
  std::vector<int> nibbles = {0, 15, 7, 8, 1, 14, 3, 12, 5, 10, 9};
  std::vector<uint32_t> q4(2, 0);
  std::vector<float> scales, zeros;
  for (int64_t n = 0; n < N; ++n) {
    q4[size_t(n / 8)] |= uint32_t(nibbles[size_t(n)]) << (4 * (n % 8));
    scales.push_back(0.125f * float(n + 1));
    zeros.push_back(float(n % 16));
  }
  y = run({{"W_FORMAT", "q4"}, {"W_WORDS", "2"}, {"W_GROUPS", "1"}, {"W_GROUP", "1"}, {"W_AXIS", "0"},
           {"W_SIGNED", "false"}},
          q4, scales, zeros);
  for (int64_t n = 0; n < N; ++n)
    EXPECT_EQ(y[size_t(n)], float(nibbles[size_t(n)] - int(zeros[size_t(n)])) * scales[size_t(n)]) << "int4 " << n;
  // int8, symmetric: sign-extended bytes.
  std::vector<int> bytes = {0, -1, 127, -127, -128, 1, 64, -64, 100, -100, 3};
  std::vector<uint32_t> q8(3, 0);
  for (int64_t n = 0; n < N; ++n)
    q8[size_t(n / 4)] |= uint32_t(uint8_t(int8_t(bytes[size_t(n)]))) << (8 * (n % 4));
  y = run({{"W_FORMAT", "q8"}, {"W_WORDS", "3"}, {"W_GROUPS", "1"}, {"W_GROUP", "1"}, {"W_AXIS", "0"},
           {"W_SIGNED", "true"}},
          q8, scales, std::vector<float>(N, 0.0f));
  for (int64_t n = 0; n < N; ++n)
    EXPECT_EQ(y[size_t(n)], float(bytes[size_t(n)]) * scales[size_t(n)]) << "int8 " << n;
}

/// The largest |out - reference| of causal attention (kH heads of kD, caches of kC slots, scale
/// 1 / sqrt(32)) for query rows at `positions` (-1: padding, whose output is not compared),
/// their queries in qkv's first kE columns, in double precision.
static double attentionError(const std::vector<float> &qkv, const std::vector<float> &kc, const std::vector<float> &vc,
                      const std::vector<int32_t> &positions, const std::vector<float> &out) {
  double worst = 0;
  for (size_t s = 0; s < positions.size(); ++s)
    for (int64_t h = 0; h < kH; ++h) {
      int64_t pos = positions[s];
      std::vector<double> p(size_t(std::max<int64_t>(pos + 1, 0)));
      double mx = -1e300, sum = 0;
      for (int64_t c = 0; c <= pos; ++c) {
        double dot = 0;
        for (int64_t d = 0; d < kD; ++d)
          dot += double(qkv[s * 3 * kE + size_t(h * kD + d)]) * kc[size_t((h * kC + c) * kD + d)];
        p[size_t(c)] = dot * 0.17677669529663687;
        mx = std::max(mx, p[size_t(c)]);
      }
      for (auto &v : p)
        sum += v = std::exp(v - mx);
      for (int64_t d = 0; d < kD; ++d) {
        double want = 0;
        for (int64_t c = 0; c <= pos; ++c)
          want += p[size_t(c)] / sum * vc[size_t((h * kC + c) * kD + d)];
        worst = std::max(worst, std::fabs(out[s * kE + size_t(h * kD + d)] - want));
      }
    }
  return worst;
}

TEST_F(OnDevice, CacheWriteAndAttentionMatchTheReference) {
  // A chunk of 4 rows after 5 prefilled tokens, its last row padding (position -1).
  std::vector<uint32_t> spirv = gpu::compileToSPIRV(gpu::kernelModule(instances(96, 1), gpu::profile("lavapipe")));
  auto writeK = device->kernel(spirv, "cache_write", 3), writeV = device->kernel(spirv, "cache_write_v", 3);
  auto attention = device->kernel(spirv, "attention", 5);
  std::vector<float> qkv = randomValues(kS * 3 * kE, 9), kc = randomValues(kH * kC * kD, 10),
                     vc = randomValues(kH * kC * kD, 11);
  std::vector<int32_t> positions = {5, 6, 7, -1};
  auto bqkv = upload(qkv), bk = upload(kc), bv = upload(vc), bout = device->buffer(kS * kE * 4);
  auto bpos = device->buffer(positions.size() * 4);
  bpos->write(positions.data(), positions.size() * 4);
  uint32_t groups = uint32_t((kE + 63) / 64);
  device->run(*writeK, {bqkv.get(), bpos.get(), bk.get()}, groups, uint32_t(kS));
  device->run(*writeV, {bqkv.get(), bpos.get(), bv.get()}, groups, uint32_t(kS));
  device->run(*attention, {bqkv.get(), bk.get(), bv.get(), bpos.get(), bout.get()}, uint32_t(kS), uint32_t(kH));
  // The reference: the caches written on the host, then softmax(q k^T * scale) v over slots <= position.
  for (int64_t s = 0; s < kS; ++s)
    if (positions[size_t(s)] >= 0)
      for (int64_t i = 0; i < kE; ++i) {
        int64_t h = i / kD, d = i % kD, slot = (h * kC + positions[size_t(s)]) * kD + d;
        kc[size_t(slot)] = qkv[size_t(s * 3 * kE + kE + i)];
        vc[size_t(slot)] = qkv[size_t(s * 3 * kE + 2 * kE + i)];
      }
  std::vector<float> gotK = download(*bk), gotV = download(*bv), out = download(*bout);
  EXPECT_EQ(gotK, kc);
  EXPECT_EQ(gotV, vc);
  EXPECT_LT(attentionError(qkv, kc, vc, positions, out), 1e-5);
}

// The int8 KV-cache write quantizes each (row, head) exactly as the reference does
// (quantizeActivationRow): the same int8 values, four to a word, and the same scale.
TEST_F(OnDevice, Int8CacheWriteQuantizesAsTheReference) {
  std::map<std::string, std::string> p = {{"D", std::to_string(kD)}, {"C", std::to_string(kC)},
                                          {"DW", std::to_string(kD / 4)}, {"Q_STRIDE", std::to_string(3 * kE)},
                                          {"OFFSET", std::to_string(kE)}};
  std::vector<uint32_t> spirv =
      gpu::compileToSPIRV(gpu::kernelModule({{"attention.mlir", p, "", "cache_write_q8"}}, gpu::profile("lavapipe")));
  auto write = device->kernel(spirv, "cache_write_q8", 4);
  std::vector<float> qkv = randomValues(kS * 3 * kE, 22, 3.0f);
  for (int64_t i = 0; i < kD; ++i) // a head of zeros: scale 0, q 0
    qkv[size_t(2 * 3 * kE + kE + kD + i)] = 0.0f;
  std::vector<int32_t> positions = {3, 4, 5, -1};
  auto bqkv = upload(qkv), bpos = device->buffer(positions.size() * 4);
  bpos->write(positions.data(), positions.size() * 4);
  auto bcache = device->buffer(kH * kC * kD), bscales = device->buffer(kH * kC * 4);
  bcache->zero();
  bscales->zero();
  device->run(*write, {bqkv.get(), bpos.get(), bcache.get(), bscales.get()}, uint32_t(kS), uint32_t(kH));
  std::vector<int8_t> cache(size_t(kH * kC * kD));
  std::vector<float> scales(size_t(kH * kC));
  bcache->read(cache.data(), cache.size());
  bscales->read(scales.data(), scales.size() * 4);
  for (int64_t s = 0; s < 3; ++s)
    for (int64_t h = 0; h < kH; ++h) {
      std::vector<int8_t> q(static_cast<size_t>(kD));
      float scale = quantizeActivationRow(&qkv[size_t(s * 3 * kE + kE + h * kD)], kD, 0, q.data());
      int64_t slot = h * kC + positions[size_t(s)];
      EXPECT_EQ(scales[size_t(slot)], scale) << s << " " << h;
      EXPECT_EQ(std::vector<int8_t>(cache.begin() + slot * kD, cache.begin() + (slot + 1) * kD), q) << s << " " << h;
    }
  EXPECT_EQ(std::count(scales.begin(), scales.end(), 0.0f), ptrdiff_t(scales.size() - 3 * kH + 1)); // padding: nothing
}

// W8A8's input rows: each replaced by q * scale, bit for bit the reference's quantization
// (dynamic: max|x| / 127 per row, a zero row included; static: the calibrated scale).
TEST_F(OnDevice, QuantizeRowsMatchesTheReference) {
  const int64_t rows = 5, K = 96;
  std::vector<float> x = randomValues(rows * K, 23, 4.0f);
  std::fill(x.begin() + 2 * K, x.begin() + 3 * K, 0.0f);
  for (float fixed : {0.0f, 0.03125f}) {
    std::ostringstream scale;
    scale.precision(17);
    scale << std::scientific << double(fixed);
    std::vector<uint32_t> spirv = gpu::compileToSPIRV(gpu::kernelModule(
        {{"elementwise.mlir", {{"K", std::to_string(K)}, {"SCALE", scale.str()}}, "", "quantize_rows"}},
        gpu::profile("lavapipe")));
    auto kernel = device->kernel(spirv, "quantize_rows", 2);
    auto bx = upload(x), by = device->buffer(rows * K * 4);
    device->run(*kernel, {bx.get(), by.get()}, uint32_t(rows));
    std::vector<float> y = download(*by);
    for (int64_t r = 0; r < rows; ++r) {
      std::vector<int8_t> q(static_cast<size_t>(K));
      float s = quantizeActivationRow(&x[size_t(r * K)], K, fixed, q.data());
      for (int64_t k = 0; k < K; ++k)
        ASSERT_EQ(y[size_t(r * K + k)], float(q[size_t(k)]) * s) << "scale " << fixed << " row " << r << " col " << k;
    }
  }
}

// Flash-style prefill attention: 7 rows (two query tiles of 4, the last partial, one padding
// row) over caches filled up to position 22 (two key tiles of 16), against double precision.
TEST_F(OnDevice, FlashAttentionMatchesTheReference) {
  const int64_t S = 7;
  std::map<std::string, std::string> p = {{"H", std::to_string(kH)}, {"D", std::to_string(kD)},
                                          {"C", std::to_string(kC)}, {"S", std::to_string(S)},
                                          {"Q_STRIDE", std::to_string(3 * kE)}, {"Q_OFFSET", "0"},
                                          {"SCALE", "0.17677669529663687"}, {"TQ", "4"}, {"TK", "16"}, {"TPR", "16"},
                                          {"TQD", std::to_string(4 * kD)}, {"TKD", std::to_string(16 * kD)},
                                          {"TQTK", "64"}, {"KV", "f32"}};
  std::vector<uint32_t> spirv =
      gpu::compileToSPIRV(gpu::kernelModule({{"attention.mlir", p, "", "attention_flash"}}, gpu::profile("lavapipe")));
  auto flash = device->kernel(spirv, "attention_flash", 5);
  std::vector<float> qkv = randomValues(S * 3 * kE, 19, 2.0f), kc = randomValues(kH * kC * kD, 20),
                     vc = randomValues(kH * kC * kD, 21);
  std::vector<int32_t> positions = {16, 17, 18, 19, 20, -1, 22};
  auto bqkv = upload(qkv), bk = upload(kc), bv = upload(vc), bout = device->buffer(S * kE * 4);
  auto bpos = device->buffer(positions.size() * 4);
  bpos->write(positions.data(), positions.size() * 4);
  device->run(*flash, {bqkv.get(), bk.get(), bv.get(), bpos.get(), bout.get()}, 2, uint32_t(kH));
  EXPECT_LT(attentionError(qkv, kc, vc, positions, download(*bout)), 1e-5);
}

TEST_F(OnDevice, LMHeadAndArgmaxOnTheDevice) {
  const int64_t V = 1009, E = 64; // 4 argmax chunks of 256, the last partial
  std::vector<uint32_t> spirv = gpu::compileToSPIRV(gpu::kernelModule(instances(96, 1), gpu::profile("lavapipe")));
  auto head = device->kernel(spirv, "lm_head", 3);
  auto partial = device->kernel(spirv, "argmax_partial", 3), final = device->kernel(spirv, "argmax_final", 3);
  std::vector<float> x = randomValues(E, 12), table = randomValues(V * E, 13);
  auto bx = upload(x), bt = upload(table), blogits = device->buffer(V * 4);
  auto bv = device->buffer(4 * 4), bi = device->buffer(4 * 4), bid = device->buffer(4);
  device->run(*head, {bx.get(), bt.get(), blogits.get()}, uint32_t((V + 63) / 64));
  std::vector<float> logits = download(*blogits);
  double worst = 0;
  for (int64_t v = 0; v < V; ++v) {
    double want = 0;
    for (int64_t k = 0; k < E; ++k)
      want += double(x[size_t(k)]) * table[size_t(v * E + k)];
    worst = std::max(worst, std::fabs(logits[size_t(v)] - want) / std::max(1.0, std::fabs(want)));
  }
  EXPECT_LT(worst, 1e-5);
  auto argmax = [&](const std::vector<float> &l) {
    blogits->write(l.data(), l.size() * 4);
    device->run(*partial, {blogits.get(), bv.get(), bi.get()}, 4);
    device->run(*final, {bv.get(), bi.get(), bid.get()}, 1);
    int32_t id = -1;
    bid->read(&id, 4);
    return id;
  };
  EXPECT_EQ(argmax(logits), int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin()));
  // Ties go to the lowest id (the sampler's greedy choice), within a chunk and across chunks.
  std::vector<float> tied(V, -1.0f);
  tied[700] = tied[1008] = tied[300] = tied[301] = 5.0f;
  EXPECT_EQ(argmax(tied), 300);
  std::fill(tied.begin(), tied.end(), 0.0f);
  tied[1008] = 1.0f;
  EXPECT_EQ(argmax(tied), 1008);
}

// Device-local buffers that the host cannot map (a discrete GPU's; forced here) are written,
// read and cleared through staging copies, in 16 MiB pieces.
TEST_F(OnDevice, UnmappedBuffersGoThroughStaging) {
  setenv("KILN_VULKAN_FORCE_STAGING", "1", 1);
  auto staged = vk::Device::open(0);
  unsetenv("KILN_VULKAN_FORCE_STAGING");
  const uint64_t bytes = (20u << 20) + 12; // two staging pieces, the last partial
  auto b = staged->buffer(bytes, vk::Device::Placement::Device);
  EXPECT_FALSE(b->mapped());
  EXPECT_TRUE(staged->buffer(64, vk::Device::Placement::Host)->mapped());
  std::vector<uint32_t> data(bytes / 4);
  for (size_t i = 0; i < data.size(); ++i)
    data[i] = uint32_t(i * 2654435761u);
  b->write(data.data(), bytes);
  std::vector<uint32_t> back(data.size(), 0);
  b->read(back.data(), bytes);
  EXPECT_EQ(back, data);
  b->zero();
  b->read(back.data(), bytes);
  EXPECT_EQ(std::count(back.begin(), back.end(), 0u), ptrdiff_t(back.size()));
}

TEST_F(OnDevice, BadRequestsGiveErrors) {
  EXPECT_THROW(device->buffer(0), Error);
  EXPECT_THROW(device->buffer(device->info().maxStorageBufferRange + 1), Error);
  std::vector<uint32_t> spirv = gpu::compileToSPIRV(gpu::kernelModule(instances(96, 10), gpu::profile("lavapipe")));
  auto add = device->kernel(spirv, "add", 3);
  auto one = device->buffer(64);
  EXPECT_THROW(device->run(*add, {one.get()}, 1), Error);
  EXPECT_THROW(vk::Device::open(99), Error);
}
