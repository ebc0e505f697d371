//===- VulkanProgram.cpp - running vulkan artifacts ------------------------===//
//
// program.json (backends/gpu/Schedule.h) names the buffers, the entry
// points of kernels.spv and each graph's dispatches. Weights are uploaded
// once per artifact; every session gets its own activations, caches and
// step buffers and records each graph's dispatches once, so a step is two
// small host writes, one submit and a wait.
//
//===----------------------------------------------------------------------===//
#include "../DeviceProgram.h"
#include "VulkanDevice.h"

#include "kiln/Support/Error.h"
#include "kiln/Support/File.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <cstring>
#include <map>

namespace fs = std::filesystem;

namespace kiln::rt {

namespace {

struct BufferSpec {
  std::string name, role;
  uint64_t bytes = 0, fileOffset = 0;
};
struct Binding {
  int buffer = 0;
  uint64_t offset = 0, bytes = 0;
};
struct Dispatch {
  int kernel = 0;
  std::vector<Binding> bindings;
  uint32_t groups[3] = {1, 1, 1};
};
struct Graph {
  int64_t tokens = 0;
  std::vector<Dispatch> dispatches;
};

class VulkanProgram;

class VulkanContext : public DeviceContext {
public:
  explicit VulkanContext(VulkanProgram &program);
  void run(const std::string &name, const int32_t *ids, const int32_t *positions, int64_t tokens) override;
  void readLogits(float *out) override;
  int32_t nextId() override;
  void reset() override;

private:
  vk::Buffer &byRole(const std::string &role);
  VulkanProgram &program_;
  std::vector<std::unique_ptr<vk::Buffer>> own_; ///< by buffer index; null for weights
  std::map<std::string, std::unique_ptr<vk::Recording>> recordings_;
};

class VulkanProgram : public DeviceProgram {
public:
  VulkanProgram(const std::string &dir, const uint8_t *weights, uint64_t weightBytes, uint64_t maxBindingBytes,
                const DeviceOptions &options) {
    std::string programPath = (fs::path(dir) / "program.json").string();
    auto bad = [&](const std::string &why) { fail(programPath, why); };
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(readFile(programPath, "missing from the artifact"));
    } catch (const nlohmann::json::exception &e) {
      bad(std::string("is not valid JSON: ") + e.what());
    }
    try {
      if (j.at("program_version").get<int>() != 1)
        bad("program version " + j.at("program_version").dump() + " is newer than this runtime reads (1)");
      for (const auto &b : j.at("buffers")) {
        BufferSpec s{b.at("name").get<std::string>(), b.at("role").get<std::string>(), b.at("bytes").get<uint64_t>(),
                     b.value("file_offset", uint64_t(0))};
        if (s.bytes == 0 || (s.role == "weight" && (s.fileOffset > weightBytes || s.bytes > weightBytes - s.fileOffset)))
          bad("buffer " + s.name + " lies outside weights.bin or is empty");
        roles_.emplace(s.role, int(specs_.size()));
        specs_.push_back(std::move(s));
      }
      for (const char *role : {"arena", "input_ids", "position_ids", "logits", "next_id"})
        if (!roles_.count(role))
          bad(std::string("has no ") + role + " buffer");
      entries_ = j.at("entry_points").get<std::vector<std::string>>();
      for (const auto &[name, g] : j.at("graphs").items()) {
        Graph graph;
        graph.tokens = g.at("tokens").get<int64_t>();
        for (const auto &d : g.at("dispatches")) {
          Dispatch dispatch;
          dispatch.kernel = d.at("kernel").get<int>();
          if (dispatch.kernel < 0 || size_t(dispatch.kernel) >= entries_.size())
            bad("a dispatch of graph " + name + " names kernel " + std::to_string(dispatch.kernel) + ", which does not exist");
          auto groups = d.at("groups").get<std::vector<uint32_t>>();
          if (groups.size() != 3)
            bad("a dispatch of graph " + name + " has no 3-D grid");
          std::copy(groups.begin(), groups.end(), dispatch.groups);
          for (const auto &b : d.at("bindings")) {
            Binding binding{b.at(0).get<int>(), b.at(1).get<uint64_t>(), b.at(2).get<uint64_t>()};
            if (binding.buffer < 0 || size_t(binding.buffer) >= specs_.size() ||
                binding.offset + binding.bytes > specs_[size_t(binding.buffer)].bytes)
              bad("a dispatch of graph " + name + " binds outside its buffers");
            dispatch.bindings.push_back(binding);
          }
          auto [it, fresh] = bindingCounts_.emplace(dispatch.kernel, dispatch.bindings.size());
          if (it->second != dispatch.bindings.size())
            bad("kernel " + entries_[size_t(dispatch.kernel)] + " is dispatched with different binding counts");
          graph.dispatches.push_back(std::move(dispatch));
        }
        graphs_[name] = std::move(graph);
      }
    } catch (const nlohmann::json::exception &e) {
      bad(std::string("is not a Kiln GPU program: ") + e.what());
    }
    if (!graphs_.count("prefill") || !graphs_.count("decode"))
      bad("lacks the prefill or decode graph");

    std::string spvPath = (fs::path(dir) / "kernels.spv").string();
    std::string spv = readFile(spvPath, "missing from the artifact");
    if (spv.size() % 4 || spv.size() < 20)
      fail(spvPath, "is not a SPIR-V module");
    std::vector<uint32_t> words(spv.size() / 4);
    std::memcpy(words.data(), spv.data(), spv.size());
    if (words[0] != 0x07230203u)
      fail(spvPath, "is not a SPIR-V module (bad magic number)");

    device_ = vk::Device::open(options.device);
    const vk::DeviceInfo &info = device_->info();
    name_ = "vulkan: " + info.name + ", driver " + info.driver;
    if (maxBindingBytes > info.maxStorageBufferRange)
      throw Error("vulkan: the artifact binds storage buffers of up to " + std::to_string(maxBindingBytes) +
                  " bytes; device '" + info.name + "' allows " + std::to_string(info.maxStorageBufferRange) +
                  " (recompile with --vulkan-max-buffer-bytes=" + std::to_string(info.maxStorageBufferRange / 4 * 4) +
                  ")");
    weights_.resize(specs_.size());
    for (size_t i = 0; i < specs_.size(); ++i)
      if (specs_[i].role == "weight") {
        weights_[i] = device_->buffer(specs_[i].bytes);
        weights_[i]->write(weights + specs_[i].fileOffset, specs_[i].bytes);
      }
    kernels_.resize(entries_.size());
    for (const auto &[kernel, bindings] : bindingCounts_)
      kernels_[size_t(kernel)] = device_->kernel(words, entries_[size_t(kernel)], int(bindings));
  }

  std::unique_ptr<DeviceContext> context() override { return std::make_unique<VulkanContext>(*this); }
  std::string device() const override { return name_; }

private:
  friend class VulkanContext;
  std::vector<BufferSpec> specs_;
  std::multimap<std::string, int> roles_;
  std::vector<std::string> entries_;
  std::map<int, size_t> bindingCounts_;
  std::map<std::string, Graph> graphs_;
  std::unique_ptr<vk::Device> device_;
  std::vector<std::unique_ptr<vk::Buffer>> weights_;
  std::vector<std::unique_ptr<vk::Kernel>> kernels_;
  std::string name_;
};

VulkanContext::VulkanContext(VulkanProgram &program) : program_(program) {
  own_.resize(program.specs_.size());
  for (size_t i = 0; i < program.specs_.size(); ++i)
    if (program.specs_[i].role != "weight")
      own_[i] = program.device_->buffer(program.specs_[i].bytes);
  reset();
  for (const auto &[name, graph] : program.graphs_) {
    std::vector<vk::Step> steps;
    for (const auto &d : graph.dispatches) {
      vk::Step step;
      step.kernel = program.kernels_[size_t(d.kernel)].get();
      for (const auto &b : d.bindings) {
        vk::Buffer *buffer = own_[size_t(b.buffer)] ? own_[size_t(b.buffer)].get() : program.weights_[size_t(b.buffer)].get();
        step.bindings.push_back({buffer, b.offset, b.bytes});
      }
      std::copy(d.groups, d.groups + 3, step.groups);
      steps.push_back(std::move(step));
    }
    recordings_[name] = program.device_->record(steps);
  }
}

vk::Buffer &VulkanContext::byRole(const std::string &role) {
  return *own_[size_t(program_.roles_.find(role)->second)];
}

void VulkanContext::run(const std::string &name, const int32_t *ids, const int32_t *positions, int64_t tokens) {
  auto it = recordings_.find(name);
  if (it == recordings_.end() || program_.graphs_.at(name).tokens != tokens)
    throw Error("vulkan: no graph " + name + " of " + std::to_string(tokens) + " tokens in the artifact");
  byRole("input_ids").write(ids, uint64_t(tokens) * 4);
  byRole("position_ids").write(positions, uint64_t(tokens) * 4);
  program_.device_->submit(*it->second);
}

void VulkanContext::readLogits(float *out) {
  vk::Buffer &logits = byRole("logits");
  logits.read(out, logits.size());
}

int32_t VulkanContext::nextId() {
  int32_t id = 0;
  byRole("next_id").read(&id, 4);
  return id;
}

void VulkanContext::reset() {
  for (size_t i = 0; i < own_.size(); ++i)
    if (own_[i]) {
      std::vector<char> zeros(size_t(own_[i]->size()), 0);
      own_[i]->write(zeros.data(), zeros.size());
    }
}

} // namespace

std::unique_ptr<DeviceProgram> openVulkanProgram(const std::string &dir, const uint8_t *weights, uint64_t weightBytes,
                                                 uint64_t maxBindingBytes, const DeviceOptions &options) {
  return std::make_unique<VulkanProgram>(dir, weights, weightBytes, maxBindingBytes, options);
}

} // namespace kiln::rt
