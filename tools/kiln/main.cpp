//===- main.cpp - the kiln driver -----------------------------------------===//
#include "Args.h"
#include "Driver.h"

#include "kiln/Support/Error.h"

#include <cstring>
#include <dlfcn.h>
#include <filesystem>
#include <iostream>
#include <string>

namespace {
const char *kUsage = "usage: kiln <command> [options]   (kiln <command> --help for its options)\n"
                     "commands:\n"
                     "  import            Hugging Face GPT-2 folder -> kiln IR\n"
                     "  compile           compile a model ahead of time into an artifact\n"
                     "  run               generate text (--reference: the reference interpreter)\n"
                     "  bench             prefill tokens/s and decode ms/token of an artifact\n"
                     "  serve             OpenAI-compatible HTTP server with continuous batching\n"
                     "  eval              perplexity, KL divergence and top-1 agreement on a text file\n"
                     "  pipelines         the shipped pipelines (--pipeline NAME)\n"
                     "  make-checkpoint   write a random-weight GPT-2 checkpoint\n"
                     "  devices           the GPUs vulkan and cuda artifacts can run on (--device N)\n"
                     "  version           print the version\n";
} // namespace

namespace kiln {
int runCompilerCommand(int argc, char **argv) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  fs::path lib = exe.parent_path().parent_path() / "lib" / "libkiln-compiler.so";
  void *handle = dlopen(lib.c_str(), RTLD_NOW | RTLD_GLOBAL);
  if (!handle)
    throw Error(lib.string() + ": cannot load the compiler library: " + dlerror());
  auto entry = reinterpret_cast<int (*)(int, char **)>(dlsym(handle, "kilnCompilerMain"));
  if (!entry)
    throw Error(lib.string() + ": not the kiln compiler library (no kilnCompilerMain)");
  return entry(argc, argv);
}
} // namespace kiln

int main(int argc, char **argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "help")) {
    std::cout << kUsage;
    return argc < 2 ? 1 : 0;
  }
  std::string command = argv[1];
  return kiln::reportErrors([&]() -> int {
    if (command == "run")
      return kiln::runCommand(argc, argv);
    if (command == "bench")
      return kiln::benchCommand(argc, argv);
    if (command == "serve")
      return kiln::serveCommand(argc, argv);
    if (command == "make-checkpoint")
      return kiln::makeCheckpointCommand(argc, argv);
    if (command == "devices")
      return kiln::devicesCommand(argc, argv);
    if (command == "import" || command == "compile" || command == "eval" || command == "pipelines")
      return kiln::runCompilerCommand(argc, argv);
    if (command == "version" || command == "--version") {
      std::cout << "kiln " << KILN_VERSION << "\n";
      return 0;
    }
    std::cerr << "kiln: unknown command '" << command << "'\n" << kUsage;
    return 2;
  });
}
