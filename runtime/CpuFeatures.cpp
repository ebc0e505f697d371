//===- CpuFeatures.cpp - what the host CPU can run ------------------------===//
#include "kiln/Runtime/Runtime.h"

#include "../backends/cpu/kernels/KernelABI.h"

#include <map>

namespace kiln::rt {

bool hostHasFeature(const std::string &name) {
#if defined(__x86_64__)
  __builtin_cpu_init();
  static const std::map<std::string, bool> features = {
      {"sse4.2", __builtin_cpu_supports("sse4.2")},       {"avx", __builtin_cpu_supports("avx")},
      {"avx2", __builtin_cpu_supports("avx2")},           {"fma", __builtin_cpu_supports("fma")},
      {"f16c", __builtin_cpu_supports("f16c")},           {"bmi2", __builtin_cpu_supports("bmi2")},
      {"avx512f", __builtin_cpu_supports("avx512f")},     {"avx512bw", __builtin_cpu_supports("avx512bw")},
      {"avx512vl", __builtin_cpu_supports("avx512vl")},   {"avx512dq", __builtin_cpu_supports("avx512dq")},
      {"avx512cd", __builtin_cpu_supports("avx512cd")},   {"avx512vnni", __builtin_cpu_supports("avx512vnni")},
      {"avx512bf16", __builtin_cpu_supports("avx512bf16")}, {"avx512fp16", __builtin_cpu_supports("avx512fp16")},
      {"avxvnni", __builtin_cpu_supports("avxvnni")},
  };
  auto it = features.find(name);
  return it != features.end() && it->second;
#else
  (void)name;
  return false;
#endif
}

uint64_t hostCpuFeatures() {
  uint64_t bits = 0;
#if defined(__x86_64__)
  if (hostHasFeature("avx2") && hostHasFeature("fma") && hostHasFeature("f16c"))
    bits |= KILN_CPU_AVX2;
  if (hostHasFeature("avx512f") && hostHasFeature("avx512bw") && hostHasFeature("avx512vl") &&
      hostHasFeature("avx512dq"))
    bits |= KILN_CPU_AVX512;
  if (hostHasFeature("avx512vnni"))
    bits |= KILN_CPU_AVX512VNNI;
  if (hostHasFeature("avx512bf16"))
    bits |= KILN_CPU_AVX512BF16;
#elif defined(__aarch64__)
  bits |= KILN_CPU_NEON;
#endif
  return bits;
}

} // namespace kiln::rt
