//===- Timing.cpp - the backend's timing scope ----------------------------===//
#include "kiln/Backend/Timing.h"

namespace kiln {

namespace {
mlir::TimingScope &current() {
  static mlir::TimingScope scope; // one compile per process: the driver's thread sets and reads it
  return scope;
}
} // namespace

mlir::TimingScope &compileTiming() { return current(); }
void setCompileTiming(mlir::TimingScope scope) { current() = std::move(scope); }

} // namespace kiln
