//===- CudaProgram.cpp - running cuda artifacts ----------------------------===//
//
// libcuda.so.1 is opened at run time (the runtime builds and runs cpu and
// vulkan artifacts without it). The device's primary context; the cubin of
// its architecture when the artifact has one, else the PTX, JIT-compiled by
// the driver; one device allocation per buffer of program.json, weights
// uploaded once. Each session has a stream and captures each graph's
// launches once into a CUDA graph, so a step is two small copies, one
// cuGraphLaunch and a synchronize (KILN_CUDA_GRAPHS=0 launches the kernels
// one by one instead, for comparison).
//
//===----------------------------------------------------------------------===//
#include "../DeviceProgram.h"
#include "../ProgramSpec.h"
#include "CudaApi.h"

#include "kiln/Support/Error.h"
#include "kiln/Support/File.h"

#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <filesystem>
#include <map>

namespace fs = std::filesystem;

namespace kiln::rt {

namespace {

using namespace kiln::cu;

struct Api {
  void *library = nullptr;
#define KILN_CU_MEMBER(name, ret, params) ret(*name) params = nullptr;
  KILN_CUDA_FNS(KILN_CU_MEMBER)
#undef KILN_CU_MEMBER

  static Api &get() {
    static Api api = load();
    if (!api.library)
      throw Error("cuda: libcuda.so.1 is not installed (the NVIDIA driver; this machine has no NVIDIA GPU driver)");
    return api;
  }

  /// Throws "cuda: <what> failed: <name> (<description>)".
  void check(CUresult r, const std::string &what) const {
    if (r == CUDA_SUCCESS)
      return;
    const char *name = nullptr, *text = nullptr;
    cuGetErrorName(r, &name);
    cuGetErrorString(r, &text);
    throw Error("cuda: " + what + " failed: " + (name ? name : std::to_string(r)) + (text ? std::string(" (") + text + ")" : ""));
  }

private:
  static Api load() {
    Api api;
    void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib)
      return api;
#define KILN_CU_RESOLVE(name, ret, params)                                                                             \
  api.name = reinterpret_cast<ret(*) params>(dlsym(lib, #name));                                                       \
  if (!api.name)                                                                                                       \
    throw Error("cuda: the driver's libcuda.so.1 lacks " #name " (a driver older than CUDA 12?)");
    KILN_CUDA_FNS(KILN_CU_RESOLVE)
#undef KILN_CU_RESOLVE
    api.library = lib;
    return api;
  }
};

class CudaProgram;

class CudaContext : public DeviceContext {
public:
  explicit CudaContext(CudaProgram &program);
  ~CudaContext() override;
  void run(const std::string &name, const int32_t *ids, const int32_t *positions, int64_t tokens) override;
  void readLogits(float *out) override;
  int32_t nextId() override;
  void reset() override;

private:
  struct Launch {
    CUfunction function;
    uint32_t groups[3];
    std::vector<CUdeviceptr> args;
    std::vector<void *> params; ///< pointers into args
  };
  CUdeviceptr byRole(const std::string &role) const;
  void enqueue(const std::vector<Launch> &launches);

  CudaProgram &program_;
  std::vector<CUdeviceptr> own_; ///< by buffer index; 0 for weights
  CUstream stream_ = nullptr;
  std::map<std::string, std::vector<Launch>> launches_;
  std::map<std::string, CUgraphExec> graphs_;
  bool useGraphs_ = true;
};

class CudaProgram : public DeviceProgram {
public:
  CudaProgram(const std::string &dir, const uint8_t *weights, uint64_t weightBytes, const CudaTarget &target,
              const DeviceOptions &options)
      : api_(Api::get()) {
    spec_ = ProgramSpec::read(dir, weightBytes);
    blockSize_ = target.blockSize;
    if (blockSize_ == 0 || blockSize_ > 1024)
      fail((fs::path(dir) / "manifest.yaml").string(), "target.block_size must be 1 to 1024");

    CUresult init = api_.cuInit(0);
    if (init == CUDA_ERROR_NO_DEVICE)
      throw Error("cuda: no CUDA device (the driver is installed, but it sees no GPU)");
    api_.check(init, "cuInit");
    int count = 0, version = 0;
    api_.check(api_.cuDeviceGetCount(&count), "cuDeviceGetCount");
    api_.check(api_.cuDriverGetVersion(&version), "cuDriverGetVersion");
    if (count == 0)
      throw Error("cuda: no CUDA device (the driver is installed, but it sees no GPU)");
    if (options.device < 0 || options.device >= count)
      throw Error("cuda: device " + std::to_string(options.device) + " does not exist (" + std::to_string(count) +
                  " found)");
    api_.check(api_.cuDeviceGet(&device_, options.device), "cuDeviceGet");
    char name[256] = {};
    api_.check(api_.cuDeviceGetName(name, sizeof name - 1, device_), "cuDeviceGetName");
    int major = 0, minor = 0;
    api_.check(api_.cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device_), "cuDeviceGetAttribute");
    api_.check(api_.cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, device_), "cuDeviceGetAttribute");
    std::string arch = "sm_" + std::to_string(major) + std::to_string(minor);
    api_.check(api_.cuDevicePrimaryCtxRetain(&context_, device_), "cuDevicePrimaryCtxRetain");
    api_.check(api_.cuCtxSetCurrent(context_), "cuCtxSetCurrent");

    // The cubin for this architecture, else the PTX (the driver JIT-compiles it for any GPU
    // at least as new as ptx_arch).
    std::string image, imageName;
    for (const auto &c : target.cubins)
      if (c == "kernels." + arch + ".cubin")
        imageName = c;
    if (imageName.empty()) {
      int want = std::atoi(target.ptxArch.c_str() + 3);
      if (major * 10 + minor < want)
        throw Error("cuda: device '" + std::string(name) + "' is " + arch + "; the artifact's PTX needs " +
                    target.ptxArch + " or newer (recompile with --cuda-arch=" + arch + ")");
      imageName = target.ptx;
    }
    image = readFile((fs::path(dir) / imageName).string(), "missing from the artifact");
    image.push_back('\0'); // PTX is loaded as a NUL-terminated string
    char log[8192] = {};
    CUjit_option keys[] = {CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
    void *values[] = {log, reinterpret_cast<void *>(uintptr_t(sizeof log - 1))};
    CUresult loaded = api_.cuModuleLoadDataEx(&module_, image.data(), 2, keys, values);
    if (loaded == CUDA_ERROR_UNSUPPORTED_PTX_VERSION)
      throw Error("cuda: the driver (CUDA " + std::to_string(version / 1000) + "." + std::to_string(version % 1000 / 10) +
                  ") is too old for the artifact's PTX (ISA 8.0, CUDA 12.0 or newer); update the NVIDIA driver");
    if (loaded != CUDA_SUCCESS)
      api_.check(loaded, "loading " + imageName + (log[0] ? std::string(": ") + log : std::string()));
    functions_.resize(spec_.entries.size());
    for (size_t i = 0; i < spec_.entries.size(); ++i)
      api_.check(api_.cuModuleGetFunction(&functions_[i], module_, spec_.entries[i].c_str()),
                 "finding kernel " + spec_.entries[i]);
    weights_.assign(spec_.buffers.size(), 0);
    for (size_t i = 0; i < spec_.buffers.size(); ++i)
      if (spec_.buffers[i].role == "weight") {
        api_.check(api_.cuMemAlloc_v2(&weights_[i], spec_.buffers[i].bytes), "allocating " + spec_.buffers[i].name);
        api_.check(api_.cuMemcpyHtoD_v2(weights_[i], weights + spec_.buffers[i].fileOffset, spec_.buffers[i].bytes),
                   "uploading " + spec_.buffers[i].name);
      }
    name_ = "cuda: " + std::string(name) + ", " + arch + ", driver CUDA " + std::to_string(version / 1000) + "." +
            std::to_string(version % 1000 / 10) + (imageName == target.ptx ? ", PTX JIT" : ", " + imageName);
  }

  ~CudaProgram() override {
    api_.cuCtxSetCurrent(context_);
    for (CUdeviceptr p : weights_)
      if (p)
        api_.cuMemFree_v2(p);
    if (module_)
      api_.cuModuleUnload(module_);
    if (context_)
      api_.cuDevicePrimaryCtxRelease_v2(device_);
  }

  std::unique_ptr<DeviceContext> context() override { return std::make_unique<CudaContext>(*this); }
  std::string device() const override { return name_; }

private:
  friend class CudaContext;
  Api &api_;
  ProgramSpec spec_;
  unsigned blockSize_ = 0;
  CUdevice device_ = 0;
  CUcontext context_ = nullptr;
  CUmodule module_ = nullptr;
  std::vector<CUfunction> functions_;
  std::vector<CUdeviceptr> weights_;
  std::string name_;
};

CudaContext::CudaContext(CudaProgram &program) : program_(program) {
  Api &api = program.api_;
  api.check(api.cuCtxSetCurrent(program.context_), "cuCtxSetCurrent");
  if (const char *g = std::getenv("KILN_CUDA_GRAPHS"))
    useGraphs_ = std::string(g) != "0";
  const ProgramSpec &spec = program.spec_;
  own_.assign(spec.buffers.size(), 0);
  for (size_t i = 0; i < spec.buffers.size(); ++i)
    if (spec.buffers[i].role != "weight")
      api.check(api.cuMemAlloc_v2(&own_[i], spec.buffers[i].bytes), "allocating " + spec.buffers[i].name);
  api.check(api.cuStreamCreate(&stream_, CU_STREAM_NON_BLOCKING), "cuStreamCreate");
  reset();
  for (const auto &[name, graph] : spec.graphs) {
    std::vector<Launch> &launches = launches_[name];
    for (const auto &d : graph.dispatches) {
      Launch l;
      l.function = program.functions_[size_t(d.kernel)];
      std::copy(d.groups, d.groups + 3, l.groups);
      for (const auto &b : d.bindings) {
        CUdeviceptr base = own_[size_t(b.buffer)] ? own_[size_t(b.buffer)] : program.weights_[size_t(b.buffer)];
        l.args.push_back(base + b.offset);
      }
      launches.push_back(std::move(l));
    }
    for (Launch &l : launches) // after the vector stops moving
      for (CUdeviceptr &a : l.args)
        l.params.push_back(&a);
    if (useGraphs_) {
      CUgraph g = nullptr;
      api.check(api.cuStreamBeginCapture_v2(stream_, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL), "cuStreamBeginCapture");
      enqueue(launches);
      api.check(api.cuStreamEndCapture(stream_, &g), "cuStreamEndCapture");
      CUgraphExec exec = nullptr;
      CUresult r = api.cuGraphInstantiateWithFlags(&exec, g, 0);
      api.cuGraphDestroy(g);
      api.check(r, "cuGraphInstantiateWithFlags");
      graphs_[name] = exec;
    }
  }
}

CudaContext::~CudaContext() {
  Api &api = program_.api_;
  api.cuCtxSetCurrent(program_.context_);
  for (auto &[name, exec] : graphs_)
    api.cuGraphExecDestroy(exec);
  if (stream_)
    api.cuStreamDestroy_v2(stream_);
  for (CUdeviceptr p : own_)
    if (p)
      api.cuMemFree_v2(p);
}

void CudaContext::enqueue(const std::vector<Launch> &launches) {
  Api &api = program_.api_;
  for (const Launch &l : launches)
    api.check(api.cuLaunchKernel(l.function, l.groups[0], l.groups[1], l.groups[2], program_.blockSize_, 1, 1, 0,
                                 stream_, const_cast<void **>(l.params.data()), nullptr),
              "cuLaunchKernel");
}

CUdeviceptr CudaContext::byRole(const std::string &role) const { return own_[size_t(program_.spec_.buffer(role))]; }

void CudaContext::run(const std::string &name, const int32_t *ids, const int32_t *positions, int64_t tokens) {
  Api &api = program_.api_;
  auto it = launches_.find(name);
  if (it == launches_.end() || program_.spec_.graphs.at(name).tokens != tokens)
    throw Error("cuda: no graph " + name + " of " + std::to_string(tokens) + " tokens in the artifact");
  api.check(api.cuCtxSetCurrent(program_.context_), "cuCtxSetCurrent");
  api.check(api.cuMemcpyHtoDAsync_v2(byRole("input_ids"), ids, size_t(tokens) * 4, stream_), "copying the ids");
  api.check(api.cuMemcpyHtoDAsync_v2(byRole("position_ids"), positions, size_t(tokens) * 4, stream_),
            "copying the positions");
  if (useGraphs_)
    api.check(api.cuGraphLaunch(graphs_.at(name), stream_), "cuGraphLaunch");
  else
    enqueue(it->second);
  api.check(api.cuStreamSynchronize(stream_), "running graph " + name);
}

void CudaContext::readLogits(float *out) {
  Api &api = program_.api_;
  api.check(api.cuMemcpyDtoH_v2(out, byRole("logits"), program_.spec_.buffers[size_t(program_.spec_.buffer("logits"))].bytes),
            "reading the logits");
}

int32_t CudaContext::nextId() {
  Api &api = program_.api_;
  int32_t id = 0;
  api.check(api.cuMemcpyDtoH_v2(&id, byRole("next_id"), 4), "reading the next id");
  return id;
}

void CudaContext::reset() {
  Api &api = program_.api_;
  api.check(api.cuCtxSetCurrent(program_.context_), "cuCtxSetCurrent");
  for (size_t i = 0; i < own_.size(); ++i)
    if (own_[i])
      api.check(api.cuMemsetD8_v2(own_[i], 0, program_.spec_.buffers[i].bytes), "clearing " + program_.spec_.buffers[i].name);
  // The memsets run on the legacy stream, which the session's non-blocking stream does not wait for.
  api.check(api.cuCtxSynchronize(), "clearing the session's buffers");
}

} // namespace

std::vector<std::string> listCudaDevices() {
  std::vector<std::string> lines;
  try {
    Api &api = Api::get();
    CUresult init = api.cuInit(0);
    int count = 0, version = 0;
    if (init == CUDA_SUCCESS)
      api.check(api.cuDeviceGetCount(&count), "cuDeviceGetCount");
    else if (init != CUDA_ERROR_NO_DEVICE)
      api.check(init, "cuInit");
    if (count == 0)
      return {"cuda: no CUDA device (the driver is installed, but it sees no GPU)"};
    api.check(api.cuDriverGetVersion(&version), "cuDriverGetVersion");
    for (int i = 0; i < count; ++i) {
      CUdevice d = 0;
      char name[256] = {};
      int major = 0, minor = 0;
      api.check(api.cuDeviceGet(&d, i), "cuDeviceGet");
      api.check(api.cuDeviceGetName(name, sizeof name - 1, d), "cuDeviceGetName");
      api.check(api.cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, d), "cuDeviceGetAttribute");
      api.check(api.cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, d), "cuDeviceGetAttribute");
      lines.push_back(std::to_string(i) + ": " + name + ", sm_" + std::to_string(major) + std::to_string(minor) +
                      ", driver CUDA " + std::to_string(version / 1000) + "." + std::to_string(version % 1000 / 10));
    }
  } catch (const Error &e) {
    lines.push_back(e.what());
  }
  return lines;
}

std::unique_ptr<DeviceProgram> openCudaProgram(const std::string &dir, const uint8_t *weights, uint64_t weightBytes,
                                               const CudaTarget &target, const DeviceOptions &options) {
  return std::make_unique<CudaProgram>(dir, weights, weightBytes, target, options);
}

} // namespace kiln::rt
