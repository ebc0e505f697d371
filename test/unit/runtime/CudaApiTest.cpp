//===- CudaApiTest.cpp - the cuda driver's declarations against cuda.h ----===//
//
// runtime/drivers/cuda/CudaApi.h declares the CUDA driver API entry points
// itself (the runtime builds without CUDA). Where the toolkit's cuda.h is
// installed, every declaration must have cuda.h's signature (enums as the
// int they are passed as) and every constant its value; elsewhere the test
// skips with the reason.
//
//===----------------------------------------------------------------------===//
#include "CudaApi.h"

#include <gtest/gtest.h>

#if __has_include(<cuda.h>)
#include <cuda.h>

#include <type_traits>

namespace {
// An enum as the int it is passed as; every other type as is.
template <typename T, bool = std::is_enum_v<T>> struct Norm {
  using type = T;
};
template <typename T> struct Norm<T, true> {
  static_assert(sizeof(T) == sizeof(int));
  using type = int;
};
template <typename T> struct Norm<T *, false> {
  using type = typename Norm<T, std::is_enum_v<T>>::type *;
};
template <typename F> struct NormFn;
template <typename R, typename... A> struct NormFn<R(A...)> {
  using type = typename Norm<R>::type(typename Norm<A>::type...);
};
} // namespace

#define KILN_CHECK_FN(name, ret, params)                                                                               \
  static_assert(std::is_same_v<NormFn<decltype(::name)>::type, ret params>, #name " differs from cuda.h");
namespace kiln::cu {
KILN_CUDA_FNS(KILN_CHECK_FN)
} // namespace kiln::cu

static_assert(kiln::cu::CUDA_ERROR_NO_DEVICE == ::CUDA_ERROR_NO_DEVICE);
static_assert(kiln::cu::CUDA_ERROR_INVALID_PTX == ::CUDA_ERROR_INVALID_PTX);
static_assert(kiln::cu::CUDA_ERROR_UNSUPPORTED_PTX_VERSION == ::CUDA_ERROR_UNSUPPORTED_PTX_VERSION);
static_assert(kiln::cu::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR == ::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
static_assert(kiln::cu::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR == ::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
static_assert(kiln::cu::CU_JIT_ERROR_LOG_BUFFER == ::CU_JIT_ERROR_LOG_BUFFER);
static_assert(kiln::cu::CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES == ::CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES);
static_assert(kiln::cu::CU_JIT_OPTIMIZATION_LEVEL == ::CU_JIT_OPTIMIZATION_LEVEL);
static_assert(kiln::cu::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL == ::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL);
static_assert(kiln::cu::CU_STREAM_NON_BLOCKING == ::CU_STREAM_NON_BLOCKING);
static_assert(std::is_same_v<kiln::cu::CUdeviceptr, ::CUdeviceptr>);
static_assert(std::is_same_v<kiln::cu::CUcontext, ::CUcontext>);

TEST(CudaApi, DeclarationsMatchTheToolkitHeader) { SUCCEED() << "checked at compile time against cuda.h " << CUDA_VERSION; }
#else
TEST(CudaApi, DeclarationsMatchTheToolkitHeader) {
  GTEST_SKIP() << "cuda.h is not installed (the CUDA toolkit, /usr/local/cuda): the declarations are unchecked";
}
#endif
