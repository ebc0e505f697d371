//===- PipelineFuzz.h - shared set-up of the pipeline and passes targets --===//
//
// Both parse into MLIR's pass registry (kiln's passes and MLIR's generic ones, as
// `kiln compile` registers them). Pipeline.cpp is compiled here with coverage; the
// passes and MLIR come uninstrumented from the main build's shared libraries.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_TEST_FUZZ_PIPELINEFUZZ_H
#define KILN_TEST_FUZZ_PIPELINEFUZZ_H

#include "../FuzzUtil.h"
#include "kiln/Passes/Passes.h"
#include "kiln/Passes/Pipeline.h"

#include "mlir/Transforms/Passes.h"

#include <cstdlib>

namespace kiln::fuzz {

inline void registerPipelinePasses() {
  kiln::registerKilnPasses();
  mlir::registerTransformsPasses();
}

/// A pipeline the parser accepted must build: each entry was checked alone, so the
/// assembled text failing to parse (an option value that breaks MLIR's grammar) is a bug.
inline void mustBuild(const kiln::Pipeline &p) {
  mlir::OpPassManager pm("builtin.module");
  try {
    kiln::addPipeline(pm, p);
  } catch (const kiln::Error &e) {
    std::fprintf(stderr, "accepted but does not build: %s\n", e.what());
    std::abort();
  }
}

} // namespace kiln::fuzz

#endif
