//===- VerifiedStamp.h - "this file was hashed and matched" records -------===//
//
// Hashing a 500 MB weights.bin at every open costs 45-90 ms warm and the whole
// file's I/O cold. A stamp records the identity of the file that was hashed
// (device, inode, size, modification and change times in ns) with the checksum
// it matched; an open whose file still has that identity skips the hash. Every
// write, truncation or replacement of the file changes its change time (ctime),
// which user space cannot set back, or its inode, so a stale stamp never matches.
// Like the checksum itself this detects corruption and replaced files, not a
// forger (who could rewrite the manifest). Stamps live in the user's cache
// ($KILN_CACHE_DIR, else $XDG_CACHE_HOME/kiln, else ~/.cache/kiln), one file per
// device and inode, so artifact folders stay byte-identical across compiles and
// read-only folders benefit too. Everything here is best effort: without a
// writable cache the file is hashed at every open. MLIR-free: used by the
// artifact writer and by the runtime.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_SUPPORT_VERIFIEDSTAMP_H
#define KILN_SUPPORT_VERIFIEDSTAMP_H

#include "kiln/Support/File.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <sys/stat.h>

namespace kiln {

/// The stamp's one line for a file with status `st` whose content hashed to `checksum`.
inline std::string verifiedStampLine(const struct stat &st, const std::string &checksum) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "kiln-verified 1 checksum=%s dev=%llu ino=%llu size=%lld mtime=%lld.%09ld ctime=%lld.%09ld\n",
                checksum.c_str(), static_cast<unsigned long long>(st.st_dev),
                static_cast<unsigned long long>(st.st_ino), static_cast<long long>(st.st_size),
                static_cast<long long>(st.st_mtim.tv_sec), st.st_mtim.tv_nsec, static_cast<long long>(st.st_ctim.tv_sec),
                st.st_ctim.tv_nsec);
  return buf;
}

/// Where the stamp of the file with status `st` lives; empty without a cache folder.
inline std::filesystem::path verifiedStampPath(const struct stat &st) {
  std::filesystem::path cache;
  if (const char *d = std::getenv("KILN_CACHE_DIR"); d && *d)
    cache = d;
  else if (const char *x = std::getenv("XDG_CACHE_HOME"); x && *x)
    cache = std::filesystem::path(x) / "kiln";
  else if (const char *h = std::getenv("HOME"); h && *h)
    cache = std::filesystem::path(h) / ".cache" / "kiln";
  else
    return {};
  return cache / "verified" /
         (std::to_string(static_cast<unsigned long long>(st.st_dev)) + "-" +
          std::to_string(static_cast<unsigned long long>(st.st_ino)));
}

/// Whether a stamp says the file with status `st` was hashed and matched `checksum`.
inline bool verifiedStampMatches(const struct stat &st, const std::string &checksum) {
  std::filesystem::path p = verifiedStampPath(st);
  if (p.empty())
    return false;
  std::ifstream in(p, std::ios::binary);
  std::string line;
  if (!std::getline(in, line))
    return false;
  return line + "\n" == verifiedStampLine(st, checksum);
}

/// Records that the file with status `st` hashed to `checksum`; quietly does nothing where
/// the cache cannot be written (the next open hashes again, which is correct, only slower).
inline void recordVerifiedStamp(const struct stat &st, const std::string &checksum) {
  std::filesystem::path p = verifiedStampPath(st);
  if (p.empty())
    return;
  std::error_code ec;
  std::filesystem::create_directories(p.parent_path(), ec);
  if (ec)
    return;
  try {
    writeFileAtomically(p, verifiedStampLine(st, checksum));
  } catch (const Error &) {
  }
}

} // namespace kiln

#endif
