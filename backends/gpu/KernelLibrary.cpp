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
      {"desktop", {"desktop", 32, true, true, int64_t(1) << 32, 128}},
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
    std::map<std::string, std::string> params = inst.params;
    params["WG"] = std::to_string(profile.workgroupSize);
    // {{TREE %buf}}, {{TREE_MAX %buf}}: workgroup reductions (sum, maximum).
    std::regex treeRe(R"(\{\{TREE(_MAX)? (%[A-Za-z0-9_]+)\}\})");
    std::smatch m;
    while (std::regex_search(text, m, treeRe))
      text = m.prefix().str() + tree(m[2].str(), m[1].matched ? "maximumf" : "addf", profile.workgroupSize, counter) +
             m.suffix().str();
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
