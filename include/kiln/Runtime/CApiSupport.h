//===- CApiSupport.h - kiln_status for the C APIs built on the runtime ----===//
//
// Internal, not a public interface: the status object and exception guard shared
// by the runtime's C API (kiln/runtime.h) and the C APIs built over it in other
// libraries (kiln/reference.h in libkiln-compiler.so), so one kiln_status_free
// releases a status from either.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_RUNTIME_CAPISUPPORT_H
#define KILN_RUNTIME_CAPISUPPORT_H

#include "kiln/runtime.h"

#include <exception>
#include <new>
#include <string>

struct kiln_status_t {
  std::string message;
};

namespace kiln::capi {

inline kiln_status invalid(const std::string &what) { return new (std::nothrow) kiln_status_t{what}; }

/// Runs `body`, turning every exception into a status: no C++ exception crosses the C boundary.
template <typename Fn> kiln_status guarded(Fn body) {
  try {
    body();
    return nullptr;
  } catch (const std::bad_alloc &) {
    return invalid("out of memory");
  } catch (const std::exception &e) {
    return invalid(e.what());
  } catch (...) {
    return invalid("unknown error");
  }
}

} // namespace kiln::capi

#endif
