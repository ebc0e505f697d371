//===- VulkanDevice.cpp - the Vulkan compute driver (MLIR-free) -----------===//
#define VK_NO_PROTOTYPES
#include "VulkanDevice.h"

#include "kiln/Support/Error.h"

#include <vulkan/vulkan.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>

namespace kiln::vk {

// Every entry point the driver calls, resolved at run time.
#define KILN_VK_INSTANCE_FNS(X)                                                                                        \
  X(vkEnumeratePhysicalDevices) X(vkGetPhysicalDeviceProperties2)                                                      \
  X(vkGetPhysicalDeviceFeatures2) X(vkGetPhysicalDeviceQueueFamilyProperties)                                         \
  X(vkGetPhysicalDeviceMemoryProperties) X(vkCreateDevice) X(vkGetDeviceProcAddr)
#define KILN_VK_DEVICE_FNS(X)                                                                                          \
  X(vkDestroyDevice) X(vkGetDeviceQueue) X(vkCreateBuffer) X(vkDestroyBuffer) X(vkGetBufferMemoryRequirements)        \
  X(vkAllocateMemory) X(vkFreeMemory) X(vkBindBufferMemory) X(vkMapMemory) X(vkUnmapMemory)                          \
  X(vkCreateShaderModule) X(vkDestroyShaderModule) X(vkCreateDescriptorSetLayout) X(vkDestroyDescriptorSetLayout)    \
  X(vkCreatePipelineLayout) X(vkDestroyPipelineLayout) X(vkCreateComputePipelines) X(vkDestroyPipeline)              \
  X(vkCreateDescriptorPool) X(vkDestroyDescriptorPool) X(vkAllocateDescriptorSets) X(vkUpdateDescriptorSets)         \
  X(vkCreateCommandPool) X(vkDestroyCommandPool) X(vkAllocateCommandBuffers) X(vkFreeCommandBuffers)                 \
  X(vkBeginCommandBuffer) X(vkEndCommandBuffer) X(vkCmdBindPipeline) X(vkCmdBindDescriptorSets) X(vkCmdDispatch)     \
  X(vkQueueSubmit) X(vkQueueWaitIdle) X(vkCmdPipelineBarrier) X(vkCreateFence) X(vkDestroyFence)                 \
  X(vkWaitForFences) X(vkResetFences) X(vkCmdCopyBuffer) X(vkCmdFillBuffer)

struct Device::Impl {
  PFN_vkGetInstanceProcAddr getInstanceProcAddr = nullptr;
  VkInstance instance = VK_NULL_HANDLE;
  VkPhysicalDevice physical = VK_NULL_HANDLE;
  VkDevice device = VK_NULL_HANDLE;
  VkQueue queue = VK_NULL_HANDLE;
  uint32_t queueFamily = 0;
  VkCommandPool commandPool = VK_NULL_HANDLE;
  VkPhysicalDeviceMemoryProperties memory{};
  bool forceStaging = false; ///< KILN_VULKAN_FORCE_STAGING=1: device buffers unmapped (tests the staging path)

  /// Records `body` into a one-time command buffer, submits it and waits.
  template <typename Body> void oneShot(Body body);
#define KILN_VK_MEMBER(name) PFN_##name name = nullptr;
  KILN_VK_INSTANCE_FNS(KILN_VK_MEMBER)
  KILN_VK_DEVICE_FNS(KILN_VK_MEMBER)
#undef KILN_VK_MEMBER

  ~Impl() {
    if (device) {
      if (commandPool)
        vkDestroyCommandPool(device, commandPool, nullptr);
      vkDestroyDevice(device, nullptr);
    }
    // The instance is the process's (processInstance): it outlives every device.
  }
};

// Resolves entry point `name` into impl->name with `get(handle, "name")`.
#define KILN_VK_RESOLVE(get, handle, name)                                                                             \
  impl->name = reinterpret_cast<PFN_##name>(get(handle, #name));                                                       \
  if (!impl->name)                                                                                                     \
    throw Error("vulkan: the driver lacks " #name);

namespace {
void check(VkResult r, const char *what) {
  if (r != VK_SUCCESS)
    throw Error(std::string("vulkan: ") + what + " failed (VkResult " + std::to_string(int(r)) + ")");
}

// One VkInstance for the whole process, created on first use and never destroyed. The loader
// unloads the ICD with the last instance, so opening and closing one per device re-initialized
// the driver every time and stranded what its globals held (LeakSanitizer reports lavapipe's
// as leaks from an unloaded module).
struct ProcessInstance {
  PFN_vkGetInstanceProcAddr getInstanceProcAddr = nullptr;
  VkInstance instance = VK_NULL_HANDLE;
  std::string error; ///< why there is none; every open reports it
};

ProcessInstance createProcessInstance() {
  ProcessInstance p;
  void *library = dlopen("libvulkan.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!library) {
    p.error = "vulkan: libvulkan.so.1 is not installed (Debian: libvulkan1 and a driver, e.g. mesa-vulkan-drivers)";
    return p;
  }
  auto gipa = reinterpret_cast<PFN_vkGetInstanceProcAddr>(dlsym(library, "vkGetInstanceProcAddr"));
  if (!gipa) {
    p.error = "vulkan: libvulkan.so.1 has no vkGetInstanceProcAddr";
    return p;
  }
  auto createInstance = reinterpret_cast<PFN_vkCreateInstance>(gipa(VK_NULL_HANDLE, "vkCreateInstance"));
  VkApplicationInfo app{VK_STRUCTURE_TYPE_APPLICATION_INFO};
  app.pApplicationName = "kiln";
  app.apiVersion = VK_API_VERSION_1_2;
  VkInstanceCreateInfo ci{VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO};
  ci.pApplicationInfo = &app;
  VkResult r = createInstance ? createInstance(&ci, nullptr, &p.instance) : VK_ERROR_INITIALIZATION_FAILED;
  if (r != VK_SUCCESS) {
    p.error = "vulkan: vkCreateInstance failed (VkResult " + std::to_string(int(r)) + ")";
    return p;
  }
  p.getInstanceProcAddr = gipa;
  return p;
}

std::unique_ptr<Device::Impl> openInstance() {
  static const ProcessInstance process = createProcessInstance(); // thread-safe, once
  if (!process.error.empty())
    throw Error(process.error);
  auto impl = std::make_unique<Device::Impl>();
  impl->getInstanceProcAddr = process.getInstanceProcAddr;
  impl->instance = process.instance;
#define KILN_VK_LOAD(name) KILN_VK_RESOLVE(impl->getInstanceProcAddr, impl->instance, name)
  KILN_VK_INSTANCE_FNS(KILN_VK_LOAD)
#undef KILN_VK_LOAD
  return impl;
}
} // namespace

bool Device::available(std::string *why) {
  try {
    if (count() == 0) {
      if (why)
        *why = "vulkan: no Vulkan device (install mesa-vulkan-drivers for lavapipe)";
      return false;
    }
    return true;
  } catch (const Error &e) {
    if (why)
      *why = e.what();
    return false;
  }
}

int Device::count() {
  auto impl = openInstance();
  uint32_t n = 0;
  check(impl->vkEnumeratePhysicalDevices(impl->instance, &n, nullptr), "vkEnumeratePhysicalDevices");
  return int(n);
}

Device::Device(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Device::~Device() = default;

std::unique_ptr<Device> Device::open(int index) {
  auto impl = openInstance();
  uint32_t n = 0;
  check(impl->vkEnumeratePhysicalDevices(impl->instance, &n, nullptr), "vkEnumeratePhysicalDevices");
  if (n == 0)
    throw Error("vulkan: no Vulkan device (install mesa-vulkan-drivers for lavapipe)");
  if (index < 0 || uint32_t(index) >= n)
    throw Error("vulkan: device " + std::to_string(index) + " does not exist (" + std::to_string(n) + " found)");
  std::vector<VkPhysicalDevice> devices(n);
  check(impl->vkEnumeratePhysicalDevices(impl->instance, &n, devices.data()), "vkEnumeratePhysicalDevices");
  impl->physical = devices[size_t(index)];

  DeviceInfo info;
  VkPhysicalDeviceSubgroupProperties subgroup{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
  VkPhysicalDeviceProperties2 props{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, &subgroup};
  VkPhysicalDeviceDriverProperties driver{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES};
  subgroup.pNext = &driver;
  impl->vkGetPhysicalDeviceProperties2(impl->physical, &props);
  info.name = props.properties.deviceName;
  info.driver = driver.driverName;
  info.apiVersion = props.properties.apiVersion;
  info.subgroupSize = subgroup.subgroupSize;
  info.maxStorageBufferRange = props.properties.limits.maxStorageBufferRange;
  info.minStorageBufferOffsetAlignment = props.properties.limits.minStorageBufferOffsetAlignment;
  VkPhysicalDeviceVulkan12Features f12{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
  VkPhysicalDeviceVulkan11Features f11{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES, &f12};
  VkPhysicalDeviceFeatures2 features{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, &f11};
  impl->vkGetPhysicalDeviceFeatures2(impl->physical, &features);
  info.shaderFloat16 = f12.shaderFloat16;
  info.storageBuffer16Bit = f11.storageBuffer16BitAccess;
  info.storageBuffer8Bit = f12.storageBuffer8BitAccess;

  uint32_t families = 0;
  impl->vkGetPhysicalDeviceQueueFamilyProperties(impl->physical, &families, nullptr);
  std::vector<VkQueueFamilyProperties> fam(families);
  impl->vkGetPhysicalDeviceQueueFamilyProperties(impl->physical, &families, fam.data());
  bool found = false;
  for (uint32_t i = 0; i < families && !found; ++i)
    if (fam[i].queueFlags & VK_QUEUE_COMPUTE_BIT) {
      impl->queueFamily = i;
      found = true;
    }
  if (!found)
    throw Error("vulkan: device '" + info.name + "' has no compute queue");
  float priority = 1.0f;
  VkDeviceQueueCreateInfo queue{VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO};
  queue.queueFamilyIndex = impl->queueFamily;
  queue.queueCount = 1;
  queue.pQueuePriorities = &priority;
  VkDeviceCreateInfo dci{VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO};
  dci.queueCreateInfoCount = 1;
  dci.pQueueCreateInfos = &queue;
  check(impl->vkCreateDevice(impl->physical, &dci, nullptr, &impl->device), "vkCreateDevice");
#define KILN_VK_LOAD(name) KILN_VK_RESOLVE(impl->vkGetDeviceProcAddr, impl->device, name)
  KILN_VK_DEVICE_FNS(KILN_VK_LOAD)
#undef KILN_VK_LOAD
  impl->vkGetDeviceQueue(impl->device, impl->queueFamily, 0, &impl->queue);
  impl->vkGetPhysicalDeviceMemoryProperties(impl->physical, &impl->memory);
  if (const char *f = std::getenv("KILN_VULKAN_FORCE_STAGING"))
    impl->forceStaging = std::string(f) == "1";
  VkCommandPoolCreateInfo pool{VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
  pool.queueFamilyIndex = impl->queueFamily;
  check(impl->vkCreateCommandPool(impl->device, &pool, nullptr, &impl->commandPool), "vkCreateCommandPool");
  std::unique_ptr<Device> d(new Device(std::move(impl)));
  d->info_ = info;
  return d;
}

std::unique_ptr<Buffer> Device::buffer(uint64_t bytes, Placement placement) {
  Impl &vk = *impl_;
  if (bytes == 0 || bytes > info_.maxStorageBufferRange)
    throw Error("vulkan: a storage buffer of " + std::to_string(bytes) + " bytes (the device allows 1 to " +
                std::to_string(info_.maxStorageBufferRange) + ")");
  std::unique_ptr<Buffer> b(new Buffer());
  b->device_ = impl_.get();
  b->size_ = bytes;
  VkBufferCreateInfo bci{VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO};
  bci.size = bytes;
  bci.usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT;
  VkBuffer buffer;
  check(vk.vkCreateBuffer(vk.device, &bci, nullptr, &buffer), "vkCreateBuffer");
  b->buffer_ = reinterpret_cast<void *>(buffer);
  VkMemoryRequirements req;
  vk.vkGetBufferMemoryRequirements(vk.device, buffer, &req);
  const VkMemoryPropertyFlags hostFlags = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
  auto find = [&](VkMemoryPropertyFlags want) {
    for (uint32_t i = 0; i < vk.memory.memoryTypeCount; ++i)
      if ((req.memoryTypeBits & (1u << i)) && (vk.memory.memoryTypes[i].propertyFlags & want) == want)
        return i;
    return UINT32_MAX;
  };
  // Device buffers: device-local and mappable if there is such memory, else device-local, else
  // any host memory (a driver without device-local memory types).
  uint32_t type = placement == Placement::Device ? find(VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT | hostFlags) : find(hostFlags);
  if (type == UINT32_MAX && placement == Placement::Device)
    type = find(VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT);
  if (type == UINT32_MAX)
    type = find(hostFlags);
  if (type == UINT32_MAX)
    throw Error("vulkan: no memory type for a storage buffer");
  VkMemoryAllocateInfo mai{VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO};
  mai.allocationSize = req.size;
  mai.memoryTypeIndex = type;
  VkDeviceMemory memory;
  check(vk.vkAllocateMemory(vk.device, &mai, nullptr, &memory),
        ("vkAllocateMemory of " + std::to_string(bytes) + " bytes (out of device memory?)").c_str());
  b->memory_ = reinterpret_cast<void *>(memory);
  check(vk.vkBindBufferMemory(vk.device, buffer, memory, 0), "vkBindBufferMemory");
  bool mappable = (vk.memory.memoryTypes[type].propertyFlags & hostFlags) == hostFlags;
  if (mappable && !(placement == Placement::Device && vk.forceStaging))
    check(vk.vkMapMemory(vk.device, memory, 0, bytes, 0, &b->mapped_), "vkMapMemory");
  return b;
}

template <typename Body> void Device::Impl::oneShot(Body body) {
  VkCommandBufferAllocateInfo cbai{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
  cbai.commandPool = commandPool;
  cbai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
  cbai.commandBufferCount = 1;
  VkCommandBuffer cb;
  check(vkAllocateCommandBuffers(device, &cbai, &cb), "vkAllocateCommandBuffers");
  VkCommandBufferBeginInfo begin{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
  begin.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
  VkResult r = vkBeginCommandBuffer(cb, &begin);
  if (r == VK_SUCCESS) {
    body(cb);
    r = vkEndCommandBuffer(cb);
  }
  if (r == VK_SUCCESS) {
    VkSubmitInfo submit{VK_STRUCTURE_TYPE_SUBMIT_INFO};
    submit.commandBufferCount = 1;
    submit.pCommandBuffers = &cb;
    r = vkQueueSubmit(queue, 1, &submit, VK_NULL_HANDLE);
    if (r == VK_SUCCESS)
      r = vkQueueWaitIdle(queue);
  }
  vkFreeCommandBuffers(device, commandPool, 1, &cb);
  check(r, "a transfer to or from the device");
}

Buffer::~Buffer() {
  auto &vk = *device_;
  if (mapped_)
    vk.vkUnmapMemory(vk.device, reinterpret_cast<VkDeviceMemory>(memory_));
  if (buffer_)
    vk.vkDestroyBuffer(vk.device, reinterpret_cast<VkBuffer>(buffer_), nullptr);
  if (memory_)
    vk.vkFreeMemory(vk.device, reinterpret_cast<VkDeviceMemory>(memory_), nullptr);
}

namespace {
/// A host-visible staging buffer for the transfers of an unmapped buffer.
struct Staging {
  Device::Impl &vk;
  VkBuffer buffer = VK_NULL_HANDLE;
  VkDeviceMemory memory = VK_NULL_HANDLE;
  void *mapped = nullptr;
  Staging(Device::Impl &impl, uint64_t bytes) : vk(impl) {
    VkBufferCreateInfo bci{VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO};
    bci.size = bytes;
    bci.usage = VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT;
    check(vk.vkCreateBuffer(vk.device, &bci, nullptr, &buffer), "vkCreateBuffer (staging)");
    VkMemoryRequirements req;
    vk.vkGetBufferMemoryRequirements(vk.device, buffer, &req);
    const VkMemoryPropertyFlags want = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    uint32_t type = UINT32_MAX;
    for (uint32_t i = 0; i < vk.memory.memoryTypeCount && type == UINT32_MAX; ++i)
      if ((req.memoryTypeBits & (1u << i)) && (vk.memory.memoryTypes[i].propertyFlags & want) == want)
        type = i;
    if (type == UINT32_MAX)
      throw Error("vulkan: no host-visible memory for a staging buffer");
    VkMemoryAllocateInfo mai{VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO};
    mai.allocationSize = req.size;
    mai.memoryTypeIndex = type;
    check(vk.vkAllocateMemory(vk.device, &mai, nullptr, &memory), "vkAllocateMemory (staging)");
    check(vk.vkBindBufferMemory(vk.device, buffer, memory, 0), "vkBindBufferMemory (staging)");
    check(vk.vkMapMemory(vk.device, memory, 0, bytes, 0, &mapped), "vkMapMemory (staging)");
  }
  ~Staging() {
    if (mapped)
      vk.vkUnmapMemory(vk.device, memory);
    if (buffer)
      vk.vkDestroyBuffer(vk.device, buffer, nullptr);
    if (memory)
      vk.vkFreeMemory(vk.device, memory, nullptr);
  }
};
/// Staged transfers go in pieces of at most this many bytes.
constexpr uint64_t kStagingBytes = 16 << 20;
} // namespace

void Buffer::write(const void *data, uint64_t bytes, uint64_t offset) {
  if (offset + bytes > size_)
    throw Error("vulkan: a write past the end of a buffer");
  if (mapped_) {
    std::memcpy(static_cast<char *>(mapped_) + offset, data, bytes);
    return;
  }
  Staging staging(*device_, std::min(bytes, kStagingBytes));
  for (uint64_t done = 0; done < bytes;) {
    uint64_t n = std::min(bytes - done, kStagingBytes);
    std::memcpy(staging.mapped, static_cast<const char *>(data) + done, n);
    device_->oneShot([&](VkCommandBuffer cb) {
      VkBufferCopy region{0, offset + done, n};
      device_->vkCmdCopyBuffer(cb, staging.buffer, reinterpret_cast<VkBuffer>(buffer_), 1, &region);
    });
    done += n;
  }
}

void Buffer::read(void *data, uint64_t bytes, uint64_t offset) const {
  if (offset + bytes > size_)
    throw Error("vulkan: a read past the end of a buffer");
  if (mapped_) {
    std::memcpy(data, static_cast<const char *>(mapped_) + offset, bytes);
    return;
  }
  Staging staging(*device_, std::min(bytes, kStagingBytes));
  for (uint64_t done = 0; done < bytes;) {
    uint64_t n = std::min(bytes - done, kStagingBytes);
    device_->oneShot([&](VkCommandBuffer cb) {
      VkBufferCopy region{offset + done, 0, n};
      device_->vkCmdCopyBuffer(cb, reinterpret_cast<VkBuffer>(buffer_), staging.buffer, 1, &region);
    });
    std::memcpy(static_cast<char *>(data) + done, staging.mapped, n);
    done += n;
  }
}

void Buffer::zero() {
  if (mapped_) {
    std::memset(mapped_, 0, size_);
    return;
  }
  device_->oneShot([&](VkCommandBuffer cb) {
    device_->vkCmdFillBuffer(cb, reinterpret_cast<VkBuffer>(buffer_), 0, VK_WHOLE_SIZE, 0);
  });
}

std::unique_ptr<Kernel> Device::kernel(const std::vector<uint32_t> &spirv, const std::string &entry, int bindings) {
  Impl &vk = *impl_;
  std::unique_ptr<Kernel> k(new Kernel());
  k->device_ = impl_.get();
  k->bindings_ = bindings;
  VkShaderModuleCreateInfo smci{VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO};
  smci.codeSize = spirv.size() * 4;
  smci.pCode = spirv.data();
  VkShaderModule module;
  check(vk.vkCreateShaderModule(vk.device, &smci, nullptr, &module), "vkCreateShaderModule");
  k->module_ = reinterpret_cast<void *>(module);
  std::vector<VkDescriptorSetLayoutBinding> slots(static_cast<size_t>(bindings));
  for (int i = 0; i < bindings; ++i)
    slots[size_t(i)] = {uint32_t(i), VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 1, VK_SHADER_STAGE_COMPUTE_BIT, nullptr};
  VkDescriptorSetLayoutCreateInfo dslci{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO};
  dslci.bindingCount = uint32_t(bindings);
  dslci.pBindings = slots.data();
  VkDescriptorSetLayout setLayout;
  check(vk.vkCreateDescriptorSetLayout(vk.device, &dslci, nullptr, &setLayout), "vkCreateDescriptorSetLayout");
  k->setLayout_ = reinterpret_cast<void *>(setLayout);
  VkPipelineLayoutCreateInfo plci{VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO};
  plci.setLayoutCount = 1;
  plci.pSetLayouts = &setLayout;
  VkPipelineLayout layout;
  check(vk.vkCreatePipelineLayout(vk.device, &plci, nullptr, &layout), "vkCreatePipelineLayout");
  k->layout_ = reinterpret_cast<void *>(layout);
  VkComputePipelineCreateInfo cpci{VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO};
  cpci.stage = {VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO};
  cpci.stage.stage = VK_SHADER_STAGE_COMPUTE_BIT;
  cpci.stage.module = module;
  cpci.stage.pName = entry.c_str();
  cpci.layout = layout;
  VkPipeline pipeline;
  check(vk.vkCreateComputePipelines(vk.device, VK_NULL_HANDLE, 1, &cpci, nullptr, &pipeline),
        ("vkCreateComputePipelines for '" + entry + "'").c_str());
  k->pipeline_ = reinterpret_cast<void *>(pipeline);
  return k;
}

Kernel::~Kernel() {
  auto &vk = *device_;
  if (pipeline_)
    vk.vkDestroyPipeline(vk.device, reinterpret_cast<VkPipeline>(pipeline_), nullptr);
  if (layout_)
    vk.vkDestroyPipelineLayout(vk.device, reinterpret_cast<VkPipelineLayout>(layout_), nullptr);
  if (setLayout_)
    vk.vkDestroyDescriptorSetLayout(vk.device, reinterpret_cast<VkDescriptorSetLayout>(setLayout_), nullptr);
  if (module_)
    vk.vkDestroyShaderModule(vk.device, reinterpret_cast<VkShaderModule>(module_), nullptr);
}

void Device::run(Kernel &kernel, const std::vector<Buffer *> &buffers, uint32_t gx, uint32_t gy, uint32_t gz) {
  Step step;
  step.kernel = &kernel;
  for (Buffer *b : buffers)
    step.bindings.push_back({b, 0, 0});
  step.groups[0] = gx;
  step.groups[1] = gy;
  step.groups[2] = gz;
  auto recording = record({step});
  submit(*recording);
}

std::unique_ptr<Recording> Device::record(const std::vector<Step> &steps) {
  Impl &vk = *impl_;
  std::unique_ptr<Recording> rec(new Recording());
  rec->device_ = impl_.get();
  uint32_t descriptors = 0;
  for (const Step &s : steps) {
    if (!s.kernel || int(s.bindings.size()) != s.kernel->bindings_)
      throw Error("vulkan: a kernel of " + std::to_string(s.kernel ? s.kernel->bindings_ : 0) + " bindings given " +
                  std::to_string(s.bindings.size()) + " buffers");
    for (const Range &r : s.bindings) {
      uint64_t bytes = r.bytes ? r.bytes : (r.buffer ? r.buffer->size_ - std::min(r.offset, r.buffer->size_) : 0);
      if (!r.buffer || r.offset + bytes > r.buffer->size_ || bytes == 0 || bytes > info_.maxStorageBufferRange)
        throw Error("vulkan: a binding outside its buffer or larger than the device's storage buffers");
      if (r.offset % std::max<uint64_t>(info_.minStorageBufferOffsetAlignment, 1))
        throw Error("vulkan: a binding offset of " + std::to_string(r.offset) + " is not a multiple of the device's " +
                    std::to_string(info_.minStorageBufferOffsetAlignment));
    }
    descriptors += uint32_t(s.bindings.size());
  }
  if (!steps.empty()) {
    VkDescriptorPoolSize size{VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, std::max<uint32_t>(descriptors, 1)};
    VkDescriptorPoolCreateInfo dpci{VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO};
    dpci.maxSets = uint32_t(steps.size());
    dpci.poolSizeCount = 1;
    dpci.pPoolSizes = &size;
    VkDescriptorPool pool;
    check(vk.vkCreateDescriptorPool(vk.device, &dpci, nullptr, &pool), "vkCreateDescriptorPool");
    rec->pool_ = reinterpret_cast<void *>(pool);
  }
  std::vector<VkDescriptorSet> sets(steps.size());
  std::vector<VkDescriptorBufferInfo> infos;
  infos.reserve(descriptors);
  std::vector<VkWriteDescriptorSet> writes;
  for (size_t i = 0; i < steps.size(); ++i) {
    auto setLayout = reinterpret_cast<VkDescriptorSetLayout>(steps[i].kernel->setLayout_);
    VkDescriptorSetAllocateInfo dsai{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO};
    dsai.descriptorPool = reinterpret_cast<VkDescriptorPool>(rec->pool_);
    dsai.descriptorSetCount = 1;
    dsai.pSetLayouts = &setLayout;
    check(vk.vkAllocateDescriptorSets(vk.device, &dsai, &sets[i]), "vkAllocateDescriptorSets");
    for (size_t b = 0; b < steps[i].bindings.size(); ++b) {
      const Range &r = steps[i].bindings[b];
      infos.push_back({reinterpret_cast<VkBuffer>(r.buffer->buffer_), r.offset, r.bytes ? r.bytes : VK_WHOLE_SIZE});
      VkWriteDescriptorSet w{VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET};
      w.dstSet = sets[i];
      w.dstBinding = uint32_t(b);
      w.descriptorCount = 1;
      w.descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
      w.pBufferInfo = &infos.back();
      writes.push_back(w);
    }
  }
  if (!writes.empty())
    vk.vkUpdateDescriptorSets(vk.device, uint32_t(writes.size()), writes.data(), 0, nullptr);

  VkCommandBufferAllocateInfo cbai{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
  cbai.commandPool = vk.commandPool;
  cbai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
  cbai.commandBufferCount = 1;
  VkCommandBuffer cb;
  check(vk.vkAllocateCommandBuffers(vk.device, &cbai, &cb), "vkAllocateCommandBuffers");
  rec->commandBuffer_ = reinterpret_cast<void *>(cb);
  VkCommandBufferBeginInfo begin{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
  check(vk.vkBeginCommandBuffer(cb, &begin), "vkBeginCommandBuffer");
  // Host writes (the step's ids and positions) before the first dispatch; each dispatch's
  // writes before the next one's reads; the last ones before the host reads back.
  VkMemoryBarrier barrier{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
  barrier.srcAccessMask = VK_ACCESS_HOST_WRITE_BIT;
  barrier.dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT;
  vk.vkCmdPipelineBarrier(cb, VK_PIPELINE_STAGE_HOST_BIT, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1, &barrier, 0,
                          nullptr, 0, nullptr);
  for (size_t i = 0; i < steps.size(); ++i) {
    const Step &s = steps[i];
    if (i > 0) {
      barrier.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT;
      barrier.dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT;
      vk.vkCmdPipelineBarrier(cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1,
                              &barrier, 0, nullptr, 0, nullptr);
    }
    vk.vkCmdBindPipeline(cb, VK_PIPELINE_BIND_POINT_COMPUTE, reinterpret_cast<VkPipeline>(s.kernel->pipeline_));
    vk.vkCmdBindDescriptorSets(cb, VK_PIPELINE_BIND_POINT_COMPUTE, reinterpret_cast<VkPipelineLayout>(s.kernel->layout_),
                               0, 1, &sets[i], 0, nullptr);
    vk.vkCmdDispatch(cb, s.groups[0], s.groups[1], s.groups[2]);
  }
  barrier.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT;
  barrier.dstAccessMask = VK_ACCESS_HOST_READ_BIT;
  vk.vkCmdPipelineBarrier(cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &barrier, 0,
                          nullptr, 0, nullptr);
  check(vk.vkEndCommandBuffer(cb), "vkEndCommandBuffer");
  VkFenceCreateInfo fci{VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
  VkFence fence;
  check(vk.vkCreateFence(vk.device, &fci, nullptr, &fence), "vkCreateFence");
  rec->fence_ = reinterpret_cast<void *>(fence);
  return rec;
}

void Device::submit(Recording &recording) {
  Impl &vk = *impl_;
  auto cb = reinterpret_cast<VkCommandBuffer>(recording.commandBuffer_);
  auto fence = reinterpret_cast<VkFence>(recording.fence_);
  VkSubmitInfo submit{VK_STRUCTURE_TYPE_SUBMIT_INFO};
  submit.commandBufferCount = 1;
  submit.pCommandBuffers = &cb;
  check(vk.vkQueueSubmit(vk.queue, 1, &submit, fence), "vkQueueSubmit");
  VkResult r = vk.vkWaitForFences(vk.device, 1, &fence, VK_TRUE, UINT64_MAX);
  vk.vkResetFences(vk.device, 1, &fence);
  check(r, "vkWaitForFences (the device stopped answering?)");
}

Recording::~Recording() {
  auto &vk = *device_;
  if (fence_)
    vk.vkDestroyFence(vk.device, reinterpret_cast<VkFence>(fence_), nullptr);
  if (commandBuffer_) {
    auto cb = reinterpret_cast<VkCommandBuffer>(commandBuffer_);
    vk.vkFreeCommandBuffers(vk.device, vk.commandPool, 1, &cb);
  }
  if (pool_)
    vk.vkDestroyDescriptorPool(vk.device, reinterpret_cast<VkDescriptorPool>(pool_), nullptr);
}

} // namespace kiln::vk
