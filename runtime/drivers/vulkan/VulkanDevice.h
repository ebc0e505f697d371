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
  uint64_t maxStorageBufferRange = 0, minStorageBufferOffsetAlignment = 0;
  bool shaderFloat16 = false, storageBuffer16Bit = false, storageBuffer8Bit = false;
};

class Buffer;
class Kernel;
class Recording;

/// A bound range of a buffer: `bytes` from `offset` (0 bytes: to its end).
struct Range {
  Buffer *buffer = nullptr;
  uint64_t offset = 0, bytes = 0;
};

/// One dispatch of a recorded command stream.
struct Step {
  Kernel *kernel = nullptr;
  std::vector<Range> bindings; ///< set 0, bindings 0..n-1 in order
  uint32_t groups[3] = {1, 1, 1};
};

class Device {
public:
  /// Opens libvulkan.so.1 and the device `index` among the physical
  /// devices; throws kiln::Error naming the cause (no loader, no device,
  /// index out of range).
  static std::unique_ptr<Device> open(int index = 0);
  /// Whether any Vulkan device can be opened here, and why not.
  static bool available(std::string *why);
  /// How many Vulkan devices the loader lists; throws kiln::Error without a loader.
  static int count();
  ~Device();

  const DeviceInfo &info() const { return info_; }
  /// Where a buffer lives: Host (host-visible and coherent: the step's inputs and outputs)
  /// or Device (device-local, the GPU's own memory: weights, activations, caches; mapped too
  /// where the device-local memory is host-visible, as on lavapipe and integrated GPUs).
  enum class Placement { Host, Device };
  /// A storage buffer of `bytes`.
  std::unique_ptr<Buffer> buffer(uint64_t bytes, Placement placement = Placement::Host);
  /// A compute pipeline for `entry` of a SPIR-V module whose bindings 0..n-1
  /// of set 0 are storage buffers.
  std::unique_ptr<Kernel> kernel(const std::vector<uint32_t> &spirv, const std::string &entry, int bindings);
  /// Records one dispatch of `kernel` over `groups` workgroups with
  /// `buffers` bound in order, submits it and waits.
  void run(Kernel &kernel, const std::vector<Buffer *> &buffers, uint32_t groupsX, uint32_t groupsY = 1,
           uint32_t groupsZ = 1);
  /// Records `steps` once into a command buffer (a barrier between
  /// consecutive dispatches: each reads what the ones before wrote), to be
  /// submitted any number of times. Throws kiln::Error for a binding count
  /// that differs from the kernel's or a range outside its buffer.
  std::unique_ptr<Recording> record(const std::vector<Step> &steps);
  /// Runs a recording and waits for it.
  void submit(Recording &recording);

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
  /// Copies in or out: directly where mapped, else through a staging buffer and a copy
  /// command (waited for).
  void write(const void *data, uint64_t bytes, uint64_t offset = 0);
  void read(void *data, uint64_t bytes, uint64_t offset = 0) const;
  /// Sets every byte to zero.
  void zero();
  bool mapped() const { return mapped_ != nullptr; }

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
  void *module_ = nullptr, *setLayout_ = nullptr, *layout_ = nullptr, *pipeline_ = nullptr;
};

class Recording {
public:
  ~Recording();

private:
  friend class Device;
  Recording() = default;
  Device::Impl *device_ = nullptr;
  void *pool_ = nullptr, *commandBuffer_ = nullptr, *fence_ = nullptr;
};

} // namespace kiln::vk

#endif
