//===- SafeTensors.h - validated, mmapped safetensors files ---------------===//
//
// MLIR-free. Opening a file validates its header against the file itself:
// header length inside the file, JSON well formed, known dtypes, shapes whose
// byte size equals the data offsets, offsets inside the data area, and no two
// tensors overlapping. Tensor data is never copied: views point into the map.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_FRONTEND_SAFETENSORS_H
#define KILN_FRONTEND_SAFETENSORS_H

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace kiln {

enum class DType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, Bool };

/// The safetensors spelling ("F32", "BF16", ...).
const char *dtypeName(DType dtype);
size_t dtypeSize(DType dtype);
bool parseDType(const std::string &name, DType &dtype);

/// A read-only memory map of a whole file; the mapping lives as long as this.
class MappedFile {
public:
  static std::shared_ptr<MappedFile> open(const std::string &path);
  ~MappedFile();
  const uint8_t *data() const { return data_; }
  size_t size() const { return size_; }
  const std::string &path() const { return path_; }

private:
  MappedFile() = default;
  std::string path_;
  const uint8_t *data_ = nullptr;
  size_t size_ = 0;
};

struct TensorView {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const uint8_t *data = nullptr; ///< Points into the mapped file.
  size_t bytes = 0;
  std::string file; ///< The file it came from, for error messages.

  int64_t numElements() const;
  /// Element `i` converted to double (float dtypes only).
  double at(size_t i) const;
};

class SafeTensorsFile {
public:
  /// Maps and validates `path`; throws kiln::Error naming the file and problem.
  static std::unique_ptr<SafeTensorsFile> open(const std::string &path);

  const std::string &path() const { return file_->path(); }
  const std::map<std::string, TensorView> &tensors() const { return tensors_; }
  const TensorView *find(const std::string &name) const;
  const std::map<std::string, std::string> &metadata() const { return metadata_; }

private:
  std::shared_ptr<MappedFile> file_;
  std::map<std::string, TensorView> tensors_;
  std::map<std::string, std::string> metadata_;
};

/// Writes a safetensors file: tensors in insertion order, header padded with
/// spaces to a multiple of 8 bytes (as the reference implementation does).
class SafeTensorsWriter {
public:
  void add(const std::string &name, DType dtype, std::vector<int64_t> shape,
           std::vector<uint8_t> bytes);
  void setMetadata(const std::string &key, const std::string &value) { metadata_[key] = value; }
  /// Writes to `path` (through a temporary file renamed into place).
  void write(const std::string &path) const;
  /// The file's bytes.
  std::string bytes() const;
  size_t dataBytes() const;

private:
  struct Entry {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    std::vector<uint8_t> bytes;
  };
  std::vector<Entry> entries_;
  std::map<std::string, std::string> metadata_;
};

} // namespace kiln

#endif
