//===- ModelCall.h - calling into a loaded model.so ------------------------===//
//
// UBSan's -fsanitize=function (in the ASan + UBSan builds and the fuzz targets)
// checks an indirect call by reading the 8 bytes before the callee for a type
// signature. model.so is not compiled with it, and its first function
// (kiln_model_abi_version: the kernels are linked first) begins its mapped code,
// so that read faulted. Every call into a model library goes through callModel.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_RUNTIME_MODELCALL_H
#define KILN_RUNTIME_MODELCALL_H

#if defined(__clang__)
#define KILN_NO_SANITIZE_FUNCTION __attribute__((no_sanitize("function")))
#else
#define KILN_NO_SANITIZE_FUNCTION
#endif

namespace kiln::rt {

template <typename Fn, typename... Args> KILN_NO_SANITIZE_FUNCTION inline auto callModel(Fn fn, Args... args) {
  return fn(args...);
}

} // namespace kiln::rt

#endif
