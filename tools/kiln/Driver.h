//===- Driver.h - the MLIR-free kiln driver -------------------------------===//
//
// `kiln` itself links only the runtime: running and benchmarking artifacts
// and writing checkpoints never load MLIR or LLVM (fast start, small RSS).
// Commands that need the compiler (import, compile, eval, run --reference)
// load libkiln-compiler.so on demand and call its kilnCompilerMain.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_TOOLS_DRIVER_H
#define KILN_TOOLS_DRIVER_H

namespace kiln {
int runCommand(int argc, char **argv);
int benchCommand(int argc, char **argv);
int makeCheckpointCommand(int argc, char **argv);
int devicesCommand(int argc, char **argv);
int serveCommand(int argc, char **argv);
/// Loads the compiler library and runs the command there.
int runCompilerCommand(int argc, char **argv);
} // namespace kiln

#endif
