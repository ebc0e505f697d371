//===- KernelLibrary.cpp - the GPU kernels, written once in MLIR ----------===//
#include "KernelLibrary.h"

#include "kiln/Support/Error.h"

#include <regex>
#include <sstream>

namespace kiln::gpu {

namespace {
const std::map<std::string, std::string> &sources() {
  static const std::map<std::string, std::string> files = {
#include "KernelSources.inc"
  };
  return files;
}

/// The tree reduction (arith `op`: addf, maximumf) of buf[0 .. wg) into buf[0], every thread
/// taking part.
std::string tree(const std::string &buf, const std::string &op, int64_t wg, int &counter) {
  std::ostringstream os;
  std::string type = "memref<" + std::to_string(wg) + "xf32, 3>";
  for (int64_t stride = wg / 2; stride >= 1; stride /= 2) {
    std::string p = "%tree" + std::to_string(counter++);
    os << "gpu.barrier\n"
       << "  " << p << "_c = arith.constant " << stride << " : index\n"
       << "  " << p << "_in = arith.cmpi ult, %tid, " << p << "_c : index\n"
       << "  scf.if " << p << "_in {\n"
       << "    " << p << "_j = arith.addi %tid, " << p << "_c : index\n"
       << "    " << p << "_a = memref.load " << buf << "[%tid] : " << type << "\n"
       << "    " << p << "_b = memref.load " << buf << "[" << p << "_j] : " << type << "\n"
       << "    " << p << "_s = arith." << op << " " << p << "_a, " << p << "_b : f32\n"
       << "    memref.store " << p << "_s, " << buf << "[%tid] : " << type << "\n"
       << "  }\n  ";
  }
  os << "gpu.barrier";
  return os.str();
}
/// The (value, lowest index) reduction of %vals / %idxs [0 .. wg) into slot 0: at each halving
/// stride, a slot takes its partner's pair when it is larger, or equal with a lower index.
std::string argmaxTree(int64_t wg) {
  std::string vt = "memref<" + std::to_string(wg) + "xf32, 3>", it = "memref<" + std::to_string(wg) + "xi32, 3>";
  std::ostringstream os;
  os << "gpu.barrier\n"
     << "  %am_levels = arith.constant " << __builtin_ctzll(uint64_t(wg)) << " : index\n"
     << "  scf.for %am_l = %c0 to %am_levels step %c1 {\n"
     << "    %am_l1 = arith.addi %am_l, %c1 : index\n"
     << "    %am_stride = arith.shrui %cwg, %am_l1 : index\n"
     << "    %am_in = arith.cmpi ult, %tid, %am_stride : index\n"
     << "    scf.if %am_in {\n"
     << "      %am_j = arith.addi %tid, %am_stride : index\n"
     << "      %am_a = memref.load %vals[%tid] : " << vt << "\n"
     << "      %am_ai = memref.load %idxs[%tid] : " << it << "\n"
     << "      %am_b = memref.load %vals[%am_j] : " << vt << "\n"
     << "      %am_bi = memref.load %idxs[%am_j] : " << it << "\n"
     << "      %am_gt = arith.cmpf ogt, %am_b, %am_a : f32\n"
     << "      %am_eq = arith.cmpf oeq, %am_b, %am_a : f32\n"
     << "      %am_lower = arith.cmpi slt, %am_bi, %am_ai : i32\n"
     << "      %am_tie = arith.andi %am_eq, %am_lower : i1\n"
     << "      %am_take = arith.ori %am_gt, %am_tie : i1\n"
     << "      %am_v = arith.select %am_take, %am_b, %am_a : f32\n"
     << "      %am_i = arith.select %am_take, %am_bi, %am_ai : i32\n"
     << "      memref.store %am_v, %vals[%tid] : " << vt << "\n"
     << "      memref.store %am_i, %idxs[%tid] : " << it << "\n"
     << "    }\n"
     << "    gpu.barrier\n"
     << "  }";
  return os.str();
}
} // namespace

std::string Profile::spirvTargetEnv() const {
  std::string caps = "Shader, GroupNonUniform";
  if (shuffles)
    caps += ", GroupNonUniformShuffle";
  if (f16)
    caps += ", Float16, StorageBuffer16BitAccess";
  return "#spirv.target_env<#spirv.vce<v1.3, [" + caps +
         "], [SPV_KHR_storage_buffer_storage_class" + std::string(f16 ? ", SPV_KHR_16bit_storage" : "") +
         "]>, #spirv.resource_limits<max_compute_workgroup_size = [1024, 1024, 64], subgroup_size = " +
         std::to_string(subgroupSize) + ">>";
}

const Profile &profile(const std::string &name) {
  static const std::map<std::string, Profile> profiles = {
      {"lavapipe", {"lavapipe", 8, false, false, int64_t(1) << 27, 64}},
      {"desktop", {"desktop", 32, true, true, int64_t(1) << 31, 128}},
  };
  auto it = profiles.find(name);
  if (it == profiles.end())
    throw Error("gpu: unknown capability profile '" + name + "' (lavapipe, desktop)");
  return it->second;
}

std::string kernelModule(const std::vector<KernelInstance> &instances, const Profile &profile) {
  std::ostringstream os;
  os << "module attributes {gpu.container_module, spirv.target_env = " << profile.spirvTargetEnv() << "} {\n"
     << "gpu.module @kernels {\n";
  int counter = 0;
  for (const auto &inst : instances) {
    auto it = sources().find(inst.file);
    if (it == sources().end())
      throw Error("gpu: no kernel template '" + inst.file + "'");
    std::string text = it->second;
    if (!inst.function.empty()) {
      // The function runs from its `gpu.func @name(` line to the first `}` in column 0.
      size_t begin = text.find("gpu.func @" + inst.function + "(");
      size_t end = begin == std::string::npos ? begin : text.find("\n}", begin);
      if (end == std::string::npos)
        throw Error("gpu: kernel template " + inst.file + " has no gpu.func @" + inst.function);
      text = text.substr(begin, end + 2 - begin);
    }
    std::map<std::string, std::string> params = inst.params;
    params["WG"] = std::to_string(profile.workgroupSize);
    // {{TREE %buf}}, {{TREE_MAX %buf}}: workgroup reductions (sum, maximum).
    std::regex treeRe(R"(\{\{TREE(_MAX)? (%[A-Za-z0-9_]+)\}\})");
    std::smatch m;
    while (std::regex_search(text, m, treeRe))
      text = m.prefix().str() + tree(m[2].str(), m[1].matched ? "maximumf" : "addf", profile.workgroupSize, counter) +
             m.suffix().str();
    for (size_t at; (at = text.find("{{ARGMAX_TREE}}")) != std::string::npos;)
      text.replace(at, 15, argmaxTree(profile.workgroupSize));
    for (const auto &[key, value] : params) {
      std::string marker = "{{" + key + "}}";
      for (size_t at; (at = text.find(marker)) != std::string::npos;)
        text.replace(at, marker.size(), value);
    }
    if (text.find("{{") != std::string::npos)
      throw Error("gpu: kernel template " + inst.file + " has a parameter left unset near '" +
                  text.substr(text.find("{{"), 20) + "'");
    text = std::regex_replace(text, std::regex(R"(gpu\.func @([A-Za-z0-9_]+)\()"), "gpu.func @$1" + inst.suffix + "(");
    os << text << "\n";
  }
  os << "}\n}\n";
  return os.str();
}

} // namespace kiln::gpu
