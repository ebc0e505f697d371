//===- FuzzUtil.h - shared helpers of the libFuzzer targets ---------------===//
//
// Parsers of outside input take files; each target writes its input into a
// scratch folder of its own (under $TMPDIR, one per process) and opens it there.
// kiln::Error is the parsers' one-line refusal and is expected; anything else
// escaping (another exception, a crash, a sanitizer report) is a finding.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_TEST_FUZZ_FUZZUTIL_H
#define KILN_TEST_FUZZ_FUZZUTIL_H

#include "kiln/Support/Error.h"

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

namespace kiln::fuzz {

inline const std::filesystem::path &scratch() {
  static const std::filesystem::path dir = [] {
    const char *tmp = std::getenv("TMPDIR");
    std::filesystem::path d = std::filesystem::path(tmp ? tmp : "/tmp") / ("kiln-fuzz-" + std::to_string(getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

inline std::string write(const std::string &name, const uint8_t *data, size_t size) {
  std::filesystem::path p = scratch() / name;
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char *>(data), std::streamsize(size));
  return p.string();
}

/// Copies the files of `from` into scratch()/`to`, all but `except` (the one the input replaces).
inline void copyFolderExcept(const std::string &from, const std::string &to, const std::string &except) {
  std::filesystem::create_directories(scratch() / to);
  for (const auto &e : std::filesystem::directory_iterator(from))
    if (e.path().filename() != except)
      std::filesystem::copy_file(e.path(), scratch() / to / e.path().filename(),
                                 std::filesystem::copy_options::overwrite_existing);
}

/// A folder the harness names in an environment variable (a model or an artifact).
inline std::string required(const char *variable) {
  const char *v = std::getenv(variable);
  if (!v || !*v) {
    std::fprintf(stderr, "fuzz: set %s (scripts/fuzz.sh does)\n", variable);
    std::abort();
  }
  return v;
}

/// Runs `body`; a kiln::Error is a refusal, which is fine.
template <typename Fn> void refusalsAllowed(Fn body) {
  try {
    body();
  } catch (const kiln::Error &) {
  }
}

} // namespace kiln::fuzz

#endif
