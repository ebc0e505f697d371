//===- main.cpp - the kiln driver -----------------------------------------===//
#include "Commands.h"

#include "kiln/Support/Error.h"

#include <cstring>
#include <iostream>
#include <string>

namespace {
const char *kUsage = "usage: kiln <command> [options]   (kiln <command> --help for its options)\n"
                     "commands:\n"
                     "  import            Hugging Face GPT-2 folder -> kiln IR\n"
                     "  compile           compile a model ahead of time into an artifact\n"
                     "  run               generate text (--reference: the reference interpreter)\n"
                     "  bench             prefill tokens/s and decode ms/token of an artifact\n"
                     "  eval              perplexity, KL divergence and top-1 agreement on a text file\n"
                     "  make-checkpoint   write a random-weight GPT-2 checkpoint\n"
                     "  version           print the version\n";
} // namespace

int main(int argc, char **argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "help")) {
    std::cout << kUsage;
    return argc < 2 ? 1 : 0;
  }
  std::string command = argv[1];
  try {
    if (command == "import")
      return kiln::importCommand(argc, argv);
    if (command == "compile")
      return kiln::compileCommand(argc, argv);
    if (command == "bench")
      return kiln::benchCommand(argc, argv);
    if (command == "run")
      return kiln::runCommand(argc, argv);
    if (command == "eval")
      return kiln::evalCommand(argc, argv);
    if (command == "make-checkpoint")
      return kiln::makeCheckpointCommand(argc, argv);
    if (command == "version" || command == "--version") {
      std::cout << "kiln " << KILN_VERSION << "\n";
      return 0;
    }
    std::cerr << "kiln: unknown command '" << command << "'\n" << kUsage;
    return 2;
  } catch (const kiln::Error &e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  } catch (const std::bad_alloc &) {
    std::cerr << "error: out of memory\n";
    return 1;
  } catch (const std::exception &e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
