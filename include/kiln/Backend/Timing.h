//===- Timing.h - kiln compile --timing's phases, backends included -------===//
//
// The driver times its phases (import, the pass pipeline pass by pass, the
// backend, writing) with MLIR's timing manager; a backend nests its own phases
// under compileTiming() without the plugin API carrying a timer. Outside
// --timing the scope is a no-op.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_BACKEND_TIMING_H
#define KILN_BACKEND_TIMING_H

#include "mlir/Support/Timing.h"

namespace kiln {

/// The scope the backend's emit runs under (a no-op one unless kiln compile --timing).
mlir::TimingScope &compileTiming();
/// Set by the driver around the backend's emit; reset to a no-op scope after.
void setCompileTiming(mlir::TimingScope scope);

} // namespace kiln

#endif
