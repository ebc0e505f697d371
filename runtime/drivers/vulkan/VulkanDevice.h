//===- VulkanDevice.h - the Vulkan compute driver (MLIR-free) -------------===//
//
// The host side of the GPU backends' Vulkan target: libvulkan.so.1 is
// opened at run time (a runtime without Vulkan installed still builds and
// runs cpu artifacts), one compute queue, storage buffers, and compute
// pipelines made from the SPIR-V the compiler wrote. On machines without a
// GPU, Mesa's lavapipe (a CPU Vulkan driver) runs the same kernels.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_RUNTIME_DRIVERS_VULKAN_VULKANDEVICE_H
#define KILN_RUNTIME_DRIVERS_VULKAN_VULKANDEVICE_H

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace kiln::vk {

struct DeviceInfo {
  std::string name, driver;
  uint32_t apiVersion = 0, subgroupSize = 0;
  uint64_t maxStorageBufferRange = 0;
  bool shaderFloat16 = false, storageBuffer16Bit = false, storageBuffer8Bit = false;
};

class Buffer;
class Kernel;

class Device {
public:
  /// Opens libvulkan.so.1 and the device `index` among the physical
  /// devices; throws kiln::Error naming the cause (no loader, no device,
  /// index out of range).
  static std::unique_ptr<Device> open(int index = 0);
  /// Whether any Vulkan device can be opened here, and why not.
  static bool available(std::string *why);
  ~Device();

  const DeviceInfo &info() const { return info_; }
  /// A host-visible storage buffer of `bytes`.
  std::unique_ptr<Buffer> buffer(uint64_t bytes);
  /// A compute pipeline for `entry` of a SPIR-V module whose bindings 0..n-1
  /// of set 0 are storage buffers.
  std::unique_ptr<Kernel> kernel(const std::vector<uint32_t> &spirv, const std::string &entry, int bindings);
  /// Records one dispatch of `kernel` over `groups` workgroups with
  /// `buffers` bound in order, submits it and waits.
  void run(Kernel &kernel, const std::vector<Buffer *> &buffers, uint32_t groupsX, uint32_t groupsY = 1,
           uint32_t groupsZ = 1);

  struct Impl;

private:
  explicit Device(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  DeviceInfo info_;
};

class Buffer {
public:
  ~Buffer();
  uint64_t size() const { return size_; }
  void write(const void *data, uint64_t bytes, uint64_t offset = 0);
  void read(void *data, uint64_t bytes, uint64_t offset = 0) const;

private:
  friend class Device;
  Buffer() = default;
  Device::Impl *device_ = nullptr;
  uint64_t size_ = 0;
  void *buffer_ = nullptr, *memory_ = nullptr, *mapped_ = nullptr;
};

class Kernel {
public:
  ~Kernel();

private:
  friend class Device;
  Kernel() = default;
  Device::Impl *device_ = nullptr;
  int bindings_ = 0;
  void *module_ = nullptr, *setLayout_ = nullptr, *layout_ = nullptr, *pipeline_ = nullptr, *pool_ = nullptr,
       *set_ = nullptr;
};

} // namespace kiln::vk

#endif
