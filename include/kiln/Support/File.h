//===- File.h - reading whole files ---------------------------------------===//
#ifndef KILN_SUPPORT_FILE_H
#define KILN_SUPPORT_FILE_H

#include "kiln/Support/Error.h"

#include <filesystem>
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

/// std::filesystem::exists, except that a path the system refuses to look up (a name too long,
/// a component that is a file, no permission) is a kiln::Error naming it, not a filesystem_error:
/// such paths come from input files (a checkpoint index names its shards).
inline bool pathExists(const std::filesystem::path &p) {
  std::error_code ec;
  bool found = std::filesystem::exists(p, ec);
  if (ec)
    fail(p.string(), ec.message());
  return found;
}

/// std::filesystem::is_directory, with the errors of pathExists.
inline bool isDirectory(const std::filesystem::path &p) {
  std::error_code ec;
  bool dir = std::filesystem::is_directory(p, ec);
  if (ec && ec != std::errc::no_such_file_or_directory)
    fail(p.string(), ec.message());
  return dir;
}

} // namespace kiln

#endif
