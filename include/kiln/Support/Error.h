//===- Error.h - errors of the MLIR-free libraries ------------------------===//
//
// The checkpoint reader, tokenizer and runtime report bad input by throwing
// kiln::Error with a one-line message that names the file and the problem.
// Tools catch it at the top and exit non-zero; the C API turns it into a
// status.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_SUPPORT_ERROR_H
#define KILN_SUPPORT_ERROR_H

#include <stdexcept>
#include <string>

namespace kiln {

class Error : public std::runtime_error {
public:
  explicit Error(const std::string &message) : std::runtime_error(message) {}
};

/// Throws kiln::Error("<file>: <message>").
[[noreturn]] inline void fail(const std::string &file, const std::string &message) {
  throw Error(file + ": " + message);
}

} // namespace kiln

#endif
