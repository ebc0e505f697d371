//===- CudaApi.h - the CUDA driver API entry points the cuda driver uses --===//
//
// The runtime builds without CUDA and opens libcuda.so.1 at run time, so the
// few types and entry points it calls are declared here (the driver API's
// stable C ABI; the _v2 names are the ones cuda.h #defines the plain names
// to). test/unit/runtime/CudaApiTest.cpp checks every declaration against cuda.h
// where the toolkit is installed.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_RUNTIME_DRIVERS_CUDA_CUDAAPI_H
#define KILN_RUNTIME_DRIVERS_CUDA_CUDAAPI_H

#include <cstddef>

// The driver's opaque handle types, at global scope as cuda.h declares them.
struct CUctx_st;
struct CUmod_st;
struct CUfunc_st;
struct CUstream_st;
struct CUgraph_st;
struct CUgraphExec_st;

namespace kiln::cu {

// cuda.h's enums (CUresult, CUjit_option, ...) are passed as the int they are.
using CUresult = int;
using CUdevice = int;
using CUdeviceptr = unsigned long long;
using CUcontext = ::CUctx_st *;
using CUmodule = ::CUmod_st *;
using CUfunction = ::CUfunc_st *;
using CUstream = ::CUstream_st *;
using CUgraph = ::CUgraph_st *;
using CUgraphExec = ::CUgraphExec_st *;
using CUjit_option = int;
using CUdevice_attribute = int;
using CUstreamCaptureMode = int;

inline constexpr CUresult CUDA_SUCCESS = 0;
inline constexpr CUresult CUDA_ERROR_NO_DEVICE = 100;
inline constexpr CUresult CUDA_ERROR_INVALID_PTX = 218;
inline constexpr CUresult CUDA_ERROR_UNSUPPORTED_PTX_VERSION = 222;
inline constexpr CUdevice_attribute CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75;
inline constexpr CUdevice_attribute CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76;
inline constexpr CUjit_option CU_JIT_ERROR_LOG_BUFFER = 5;
inline constexpr CUjit_option CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES = 6;
inline constexpr CUjit_option CU_JIT_OPTIMIZATION_LEVEL = 7;
inline constexpr CUstreamCaptureMode CU_STREAM_CAPTURE_MODE_THREAD_LOCAL = 1;
inline constexpr unsigned CU_STREAM_NON_BLOCKING = 1;

// X(name, return, parameters): every entry point, resolved with dlsym.
#define KILN_CUDA_FNS(X)                                                                                               \
  X(cuInit, CUresult, (unsigned int))                                                                                 \
  X(cuDriverGetVersion, CUresult, (int *))                                                                            \
  X(cuGetErrorString, CUresult, (CUresult, const char **))                                                            \
  X(cuGetErrorName, CUresult, (CUresult, const char **))                                                              \
  X(cuDeviceGetCount, CUresult, (int *))                                                                              \
  X(cuDeviceGet, CUresult, (CUdevice *, int))                                                                         \
  X(cuDeviceGetName, CUresult, (char *, int, CUdevice))                                                               \
  X(cuDeviceGetAttribute, CUresult, (int *, CUdevice_attribute, CUdevice))                                            \
  X(cuDevicePrimaryCtxRetain, CUresult, (CUcontext *, CUdevice))                                                      \
  X(cuDevicePrimaryCtxRelease_v2, CUresult, (CUdevice))                                                               \
  X(cuCtxSetCurrent, CUresult, (CUcontext))                                                                           \
  X(cuCtxSynchronize, CUresult, ())                                                                                   \
  X(cuModuleLoadDataEx, CUresult, (CUmodule *, const void *, unsigned int, CUjit_option *, void **))                  \
  X(cuModuleGetFunction, CUresult, (CUfunction *, CUmodule, const char *))                                            \
  X(cuModuleUnload, CUresult, (CUmodule))                                                                             \
  X(cuMemAlloc_v2, CUresult, (CUdeviceptr *, size_t))                                                                 \
  X(cuMemFree_v2, CUresult, (CUdeviceptr))                                                                            \
  X(cuMemcpyHtoD_v2, CUresult, (CUdeviceptr, const void *, size_t))                                                   \
  X(cuMemcpyDtoH_v2, CUresult, (void *, CUdeviceptr, size_t))                                                         \
  X(cuMemcpyHtoDAsync_v2, CUresult, (CUdeviceptr, const void *, size_t, CUstream))                                    \
  X(cuMemsetD8_v2, CUresult, (CUdeviceptr, unsigned char, size_t))                                                    \
  X(cuStreamCreate, CUresult, (CUstream *, unsigned int))                                                             \
  X(cuStreamDestroy_v2, CUresult, (CUstream))                                                                         \
  X(cuStreamSynchronize, CUresult, (CUstream))                                                                        \
  X(cuLaunchKernel, CUresult,                                                                                         \
    (CUfunction, unsigned int, unsigned int, unsigned int, unsigned int, unsigned int, unsigned int, unsigned int,    \
     CUstream, void **, void **))                                                                                     \
  X(cuStreamBeginCapture_v2, CUresult, (CUstream, CUstreamCaptureMode))                                              \
  X(cuStreamEndCapture, CUresult, (CUstream, CUgraph *))                                                              \
  X(cuGraphInstantiateWithFlags, CUresult, (CUgraphExec *, CUgraph, unsigned long long))                              \
  X(cuGraphLaunch, CUresult, (CUgraphExec, CUstream))                                                                 \
  X(cuGraphExecDestroy, CUresult, (CUgraphExec))                                                                      \
  X(cuGraphDestroy, CUresult, (CUgraph))

} // namespace kiln::cu

#endif
