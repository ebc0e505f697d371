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
#include "../ProgramSpec.h"
#include "VulkanDevice.h"

#include "kiln/Support/Error.h"
#include "kiln/Support/File.h"


#include <filesystem>
#include <cstring>
#include <map>

namespace fs = std::filesystem;

namespace kiln::rt {

namespace {

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
    spec_ = ProgramSpec::read(dir, weightBytes);

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
    weights_.resize(spec_.buffers.size());
    for (size_t i = 0; i < spec_.buffers.size(); ++i)
      if (spec_.buffers[i].role == "weight") {
        weights_[i] = device_->buffer(spec_.buffers[i].bytes, vk::Device::Placement::Device);
        weights_[i]->write(weights + spec_.buffers[i].fileOffset, spec_.buffers[i].bytes);
      }
    kernels_.resize(spec_.entries.size());
    for (const auto &[kernel, bindings] : spec_.bindingCounts)
      kernels_[size_t(kernel)] = device_->kernel(words, spec_.entries[size_t(kernel)], int(bindings));
  }

  std::unique_ptr<DeviceContext> context() override { return std::make_unique<VulkanContext>(*this); }
  std::string device() const override { return name_; }

private:
  friend class VulkanContext;
  ProgramSpec spec_;
  std::unique_ptr<vk::Device> device_;
  std::vector<std::unique_ptr<vk::Buffer>> weights_;
  std::vector<std::unique_ptr<vk::Kernel>> kernels_;
  std::string name_;
};

VulkanContext::VulkanContext(VulkanProgram &program) : program_(program) {
  own_.resize(program.spec_.buffers.size());
  for (size_t i = 0; i < program.spec_.buffers.size(); ++i)
    if (const std::string &role = program.spec_.buffers[i].role; role != "weight") {
      // The step's inputs and what the host reads back stay host-visible; the rest is the GPU's.
      bool host = role == "input_ids" || role == "position_ids" || role == "logits" || role == "next_id";
      own_[i] = program.device_->buffer(program.spec_.buffers[i].bytes,
                                        host ? vk::Device::Placement::Host : vk::Device::Placement::Device);
    }
  reset();
  for (const auto &[name, graph] : program.spec_.graphs) {
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
  return *own_[size_t(program_.spec_.buffer(role))];
}

void VulkanContext::run(const std::string &name, const int32_t *ids, const int32_t *positions, int64_t tokens) {
  auto it = recordings_.find(name);
  if (it == recordings_.end() || program_.spec_.graphs.at(name).tokens != tokens)
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
  for (auto &b : own_)
    if (b)
      b->zero();
}

} // namespace

std::vector<std::string> listVulkanDevices() {
  std::vector<std::string> lines;
  try {
    int n = vk::Device::count();
    if (n == 0)
      return {"vulkan: no Vulkan device (install mesa-vulkan-drivers for lavapipe)"};
    for (int i = 0; i < n; ++i) {
      auto d = vk::Device::open(i);
      const vk::DeviceInfo &info = d->info();
      lines.push_back(std::to_string(i) + ": " + info.name + ", driver " + info.driver + ", Vulkan " +
                      std::to_string(info.apiVersion >> 22) + "." + std::to_string((info.apiVersion >> 12) & 0x3ff) +
                      ", subgroup " + std::to_string(info.subgroupSize) + ", storage buffers up to " +
                      std::to_string(info.maxStorageBufferRange >> 20) + " MiB");
    }
  } catch (const Error &e) {
    lines.push_back(e.what());
  }
  return lines;
}

std::unique_ptr<DeviceProgram> openVulkanProgram(const std::string &dir, const uint8_t *weights, uint64_t weightBytes,
                                                 uint64_t maxBindingBytes, const DeviceOptions &options) {
  return std::make_unique<VulkanProgram>(dir, weights, weightBytes, maxBindingBytes, options);
}

} // namespace kiln::rt
