//===- DeviceProgram.h - the runtime's interface to accelerator drivers ---===//
//
// MLIR-free and internal to the runtime. An artifact for a GPU target is
// opened by its driver (runtime/drivers/<api>) into a DeviceProgram: the
// device, the weights uploaded once and the compiled kernels. Each Session
// gets a DeviceContext: its own KV caches, activations and step buffers, and
// one pre-recorded command stream per graph.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_RUNTIME_DRIVERS_DEVICEPROGRAM_H
#define KILN_RUNTIME_DRIVERS_DEVICEPROGRAM_H

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace kiln::rt {

class DeviceContext {
public:
  virtual ~DeviceContext() = default;
  /// Runs graph `name` (prefill or decode) on the step's `tokens` slots of
  /// ids and position ids (-1: a padding slot).
  virtual void run(const std::string &name, const int32_t *ids, const int32_t *positions, int64_t tokens) = 0;
  /// The last step's logits (vocab floats), read back.
  virtual void readLogits(float *out) = 0;
  /// The last step's greedy id, picked on the device (one value read back).
  virtual int32_t nextId() = 0;
  /// Clears the KV caches.
  virtual void reset() = 0;
};

class DeviceProgram {
public:
  virtual ~DeviceProgram() = default;
  virtual std::unique_ptr<DeviceContext> context() = 0;
  /// "vulkan: llvmpipe (LLVM 15.0.6, 256 bits), llvmpipe"
  virtual std::string device() const = 0;
};

struct DeviceOptions {
  int device = 0; ///< index among the API's devices
};

/// Opens the vulkan artifact in `dir` (manifest already checked by the
/// caller); `weights` stay the caller's. Throws kiln::Error naming the file
/// or the device's lack (no Vulkan, no device, a feature or buffer size).
std::unique_ptr<DeviceProgram> openVulkanProgram(const std::string &dir, const uint8_t *weights, uint64_t weightBytes,
                                                 uint64_t maxBindingBytes, const DeviceOptions &options);

/// One line per device of the API ("0: NAME, ..."), or the one-line reason there is none;
/// never throws.
std::vector<std::string> listVulkanDevices();
std::vector<std::string> listCudaDevices();

/// The manifest's target section of a cuda artifact.
struct CudaTarget {
  std::string ptx = "kernels.ptx", ptxArch = "sm_80";
  std::vector<std::string> cubins; ///< kernels.<arch>.cubin
  unsigned blockSize = 0;          ///< threads per block of every kernel
};

/// Opens the cuda artifact in `dir` through libcuda.so.1 (opened at run time); throws
/// kiln::Error naming the cause (no driver, no device, a GPU older than the PTX, a driver
/// too old for it).
std::unique_ptr<DeviceProgram> openCudaProgram(const std::string &dir, const uint8_t *weights, uint64_t weightBytes,
                                               const CudaTarget &target, const DeviceOptions &options);

} // namespace kiln::rt

#endif
