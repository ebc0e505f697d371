//===- DevicesCommand.cpp - kiln devices (MLIR-free) ----------------------===//
#include "Args.h"
#include "Driver.h"

#include "kiln/Runtime/Runtime.h"

#include <iostream>

namespace kiln {

int devicesCommand(int argc, char **argv) {
  Args args("devices", {}, {"--help"});
  args.parse(argc, argv, 2);
  if (args.has("--help")) {
    std::cout << "usage: kiln devices\n"
                 "Lists the GPUs this runtime can run vulkan and cuda artifacts on, by API, with the index\n"
                 "`kiln run --device N` takes (and KILN_DEVICE for programs on the C API); where an API has\n"
                 "none, the reason.\n";
    return 0;
  }
  if (!args.positional().empty())
    args.error("unexpected argument '" + args.positional()[0] + "'");
  for (const auto &[api, lines] : rt::listDevices()) {
    std::cout << api << ":\n";
    for (const auto &line : lines)
      std::cout << "  " << line << "\n";
  }
  return 0;
}

} // namespace kiln
