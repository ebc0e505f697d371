//===- CompilerMain.cpp - the commands that need MLIR ---------------------===//
//
// libkiln-compiler.so: loaded by the kiln driver for import, compile, eval,
// run --reference and pipelines; and the reference interpreter's C API
// (kiln/reference.h, ReferenceApi.cpp) for other hosts.
//
//===----------------------------------------------------------------------===//
#include "../Args.h"
#include "Commands.h"

#include "kiln/Support/Error.h"

#include <cstring>
#include <iostream>

extern "C" __attribute__((visibility("default"))) int kilnCompilerMain(int argc, char **argv) {
  std::string command = argc > 1 ? argv[1] : "";
  return kiln::reportErrors([&]() -> int {
    if (command == "import")
      return kiln::importCommand(argc, argv);
    if (command == "compile")
      return kiln::compileCommand(argc, argv);
    if (command == "eval")
      return kiln::evalCommand(argc, argv);
    if (command == "pipelines")
      return kiln::pipelinesCommand(argc, argv);
    if (command == "run")
      return kiln::referenceRunCommand(argc, argv);
    std::cerr << "kiln: the compiler library has no command '" << command << "'\n";
    return 2;
  });
}
