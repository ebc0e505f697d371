//===- File.h - reading whole files ---------------------------------------===//
#ifndef KILN_SUPPORT_FILE_H
#define KILN_SUPPORT_FILE_H

#include "kiln/Support/Error.h"

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <system_error>
#include <unistd.h>

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

/// Writes `bytes` to `path` (created or truncated); throws kiln::Error naming `shownAs`
/// (default: the path) with the system's reason, e.g. a full disk.
inline void writeFile(const std::filesystem::path &path, const std::string &bytes, const std::string &shownAs = "") {
  const std::string name = shownAs.empty() ? path.string() : shownAs;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out)
    fail(name, std::string("cannot open for writing: ") + std::strerror(errno));
  errno = 0;
  out.write(bytes.data(), std::streamsize(bytes.size()));
  out.flush();
  if (!out)
    fail(name, std::string("write failed: ") + std::strerror(errno ? errno : EIO));
}

/// writeFile through a temporary name beside `path`, so `path` is either its old file or
/// the complete new one, never a partial write (a full disk leaves the old file).
inline void writeFileAtomically(const std::filesystem::path &path, const std::string &bytes,
                                const std::string &shownAs = "") {
  const std::string name = shownAs.empty() ? path.string() : shownAs;
  static std::atomic<unsigned> serial{0}; // threads of one process writing the same path
  std::filesystem::path tmp = path;
  tmp += ".tmp-" + std::to_string(getpid()) + "-" + std::to_string(serial++);
  std::error_code ec, ignored;
  try {
    writeFile(tmp, bytes, name);
  } catch (const Error &) {
    std::filesystem::remove(tmp, ignored);
    throw;
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ignored);
    fail(name, "cannot replace: " + ec.message());
  }
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
