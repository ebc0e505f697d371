//===- CompilerMain.cpp - the commands that need MLIR ---------------------===//
//
// libkiln-compiler.so: loaded by the kiln driver for import, compile, eval
// and run --reference.
//
//===----------------------------------------------------------------------===//
#include "Commands.h"

#include "kiln/Support/Error.h"

#include <cstring>
#include <iostream>

extern "C" __attribute__((visibility("default"))) int kilnCompilerMain(int argc, char **argv) {
  std::string command = argc > 1 ? argv[1] : "";
  try {
    if (command == "import")
      return kiln::importCommand(argc, argv);
    if (command == "compile")
      return kiln::compileCommand(argc, argv);
    if (command == "eval")
      return kiln::evalCommand(argc, argv);
    if (command == "run")
      return kiln::referenceRunCommand(argc, argv);
    std::cerr << "kiln: the compiler library has no command '" << command << "'\n";
    return 2;
  } catch (const std::bad_alloc &) {
    std::cerr << "error: out of memory\n";
    return 1;
  } catch (const std::exception &e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
