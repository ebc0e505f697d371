//===- TestUtil.h - helpers shared by the unit tests ----------------------===//
#ifndef KILN_TEST_UNIT_TESTUTIL_H
#define KILN_TEST_UNIT_TESTUTIL_H

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

namespace kiln::test {

inline std::string sourceDir() {
  const char *dir = std::getenv("KILN_SOURCE_DIR");
  return dir ? dir : KILN_TEST_SOURCE_DIR;
}
inline std::string binDir() {
  const char *dir = std::getenv("KILN_BIN_DIR");
  return dir ? dir : KILN_TEST_BIN_DIR;
}
inline std::string modelDir() { return sourceDir() + "/models/kjv-gpt2-tiny"; }

/// A fresh directory under the system temp dir, removed on destruction.
class TempDir {
public:
  explicit TempDir(const std::string &tag) {
    path_ = std::filesystem::temp_directory_path() / ("kiln-" + tag + "-" + std::to_string(::getpid()));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string file(const std::string &name) const { return (path_ / name).string(); }
  const std::filesystem::path &path() const { return path_; }

private:
  std::filesystem::path path_;
};

inline void writeBytes(const std::string &path, const std::string &bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}
inline std::string readBytes(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

} // namespace kiln::test

#endif
