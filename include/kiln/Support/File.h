//===- File.h - reading whole files ---------------------------------------===//
#ifndef KILN_SUPPORT_FILE_H
#define KILN_SUPPORT_FILE_H

#include "kiln/Support/Error.h"

#include <fstream>
#include <sstream>
#include <string>

namespace kiln {

/// The bytes of `path`; throws kiln::Error("<path>: <whenMissing>") if it cannot be opened.
inline std::string readFile(const std::string &path, const std::string &whenMissing = "cannot open") {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    fail(path, whenMissing);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

} // namespace kiln

#endif
