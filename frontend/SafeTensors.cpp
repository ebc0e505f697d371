//===- SafeTensors.cpp - validated, mmapped safetensors files -------------===//
#include "kiln/Frontend/SafeTensors.h"

#include "kiln/Support/Error.h"
#include "kiln/Support/File.h"
#include "kiln/Support/Float16.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace kiln {

namespace {
struct DTypeInfo {
  DType dtype;
  const char *name;
  size_t size;
};
constexpr DTypeInfo kDTypes[] = {
    {DType::F64, "F64", 8}, {DType::F32, "F32", 4}, {DType::F16, "F16", 2},
    {DType::BF16, "BF16", 2}, {DType::I64, "I64", 8}, {DType::I32, "I32", 4},
    {DType::I16, "I16", 2}, {DType::I8, "I8", 1},   {DType::U8, "U8", 1},
    {DType::Bool, "BOOL", 1},
};

/// a * b, or false on overflow past SIZE_MAX.
bool checkedMul(uint64_t a, uint64_t b, uint64_t &out) {
  return !__builtin_mul_overflow(a, b, &out);
}
} // namespace

const char *dtypeName(DType dtype) {
  for (const auto &d : kDTypes)
    if (d.dtype == dtype)
      return d.name;
  return "?";
}

size_t dtypeSize(DType dtype) {
  for (const auto &d : kDTypes)
    if (d.dtype == dtype)
      return d.size;
  return 0;
}

bool parseDType(const std::string &name, DType &dtype) {
  for (const auto &d : kDTypes)
    if (name == d.name) {
      dtype = d.dtype;
      return true;
    }
  return false;
}

//===----------------------------------------------------------------------===//
// MappedFile
//===----------------------------------------------------------------------===//

std::shared_ptr<MappedFile> MappedFile::open(const std::string &path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    fail(path, std::string("cannot open: ") + std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(path, "not a regular file");
  }
  std::shared_ptr<MappedFile> file(new MappedFile());
  file->path_ = path;
  file->size_ = size_t(st.st_size);
  if (file->size_ > 0) {
    void *p = mmap(nullptr, file->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      ::close(fd);
      fail(path, std::string("cannot mmap: ") + std::strerror(errno));
    }
    file->data_ = static_cast<const uint8_t *>(p);
  }
  ::close(fd);
  return file;
}

MappedFile::~MappedFile() {
  if (data_)
    munmap(const_cast<uint8_t *>(data_), size_);
}

//===----------------------------------------------------------------------===//
// TensorView
//===----------------------------------------------------------------------===//

int64_t TensorView::numElements() const {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

double TensorView::at(size_t i) const {
  switch (dtype) {
  case DType::F64: {
    double v;
    std::memcpy(&v, data + 8 * i, 8);
    return v;
  }
  case DType::F32: {
    float v;
    std::memcpy(&v, data + 4 * i, 4);
    return v;
  }
  case DType::F16:
  case DType::BF16: {
    uint16_t v;
    std::memcpy(&v, data + 2 * i, 2);
    return dtype == DType::F16 ? halfToFloat(v) : bf16ToFloat(v);
  }
  default:
    fail(file, "tensor '" + name + "' has non-float dtype " + dtypeName(dtype));
  }
}

//===----------------------------------------------------------------------===//
// SafeTensorsFile
//===----------------------------------------------------------------------===//

std::unique_ptr<SafeTensorsFile> SafeTensorsFile::open(const std::string &path) {
  auto result = std::make_unique<SafeTensorsFile>();
  result->file_ = MappedFile::open(path);
  const MappedFile &file = *result->file_;
  if (file.size() < 8)
    fail(path, "truncated safetensors file: " + std::to_string(file.size()) +
                   " bytes, too short for the 8-byte header length");
  uint64_t headerLen;
  std::memcpy(&headerLen, file.data(), 8); // little-endian on every supported host
  if (headerLen > file.size() - 8)
    fail(path, "header length " + std::to_string(headerLen) + " runs past the end of the file (" +
                   std::to_string(file.size()) + " bytes)");
  const char *headerBegin = reinterpret_cast<const char *>(file.data() + 8);
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(headerBegin, headerBegin + headerLen);
  } catch (const nlohmann::json::exception &e) {
    fail(path, std::string("header is not valid JSON: ") + e.what());
  }
  if (!header.is_object())
    fail(path, "header is not a JSON object");

  const uint64_t dataStart = 8 + headerLen;
  const uint64_t dataSize = file.size() - dataStart;
  struct Range {
    uint64_t begin, end;
    std::string name;
  };
  std::vector<Range> ranges;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string &name = it.key();
    const auto &entry = it.value();
    if (name == "__metadata__") {
      if (!entry.is_object())
        fail(path, "__metadata__ is not an object");
      for (auto m = entry.begin(); m != entry.end(); ++m)
        if (m.value().is_string())
          result->metadata_[m.key()] = m.value().get<std::string>();
      continue;
    }
    auto bad = [&](const std::string &what) { fail(path, "tensor '" + name + "': " + what); };
    if (!entry.is_object())
      bad("entry is not an object");
    if (!entry.contains("dtype") || !entry["dtype"].is_string())
      bad("missing dtype");
    if (!entry.contains("shape") || !entry["shape"].is_array())
      bad("missing shape");
    if (!entry.contains("data_offsets") || !entry["data_offsets"].is_array() ||
        entry["data_offsets"].size() != 2 || !entry["data_offsets"][0].is_number_unsigned() ||
        !entry["data_offsets"][1].is_number_unsigned())
      bad("data_offsets must be [begin, end] with non-negative integers");
    TensorView view;
    view.name = name;
    view.file = path;
    std::string dtypeStr = entry["dtype"].get<std::string>();
    if (!parseDType(dtypeStr, view.dtype))
      bad("unsupported dtype '" + dtypeStr + "'");
    uint64_t count = 1;
    for (const auto &d : entry["shape"]) {
      if (!d.is_number_unsigned())
        bad("shape must hold non-negative integers");
      uint64_t dim = d.get<uint64_t>();
      if (dim > uint64_t(INT64_MAX) || !checkedMul(count, dim, count))
        bad("shape is too large");
      view.shape.push_back(int64_t(dim));
    }
    uint64_t begin = entry["data_offsets"][0].get<uint64_t>();
    uint64_t end = entry["data_offsets"][1].get<uint64_t>();
    uint64_t bytes;
    if (!checkedMul(count, dtypeSize(view.dtype), bytes))
      bad("shape is too large");
    if (begin > end)
      bad("data_offsets begin " + std::to_string(begin) + " is after end " + std::to_string(end));
    if (end > dataSize)
      bad("data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
          "] lie outside the data area of " + std::to_string(dataSize) + " bytes");
    if (end - begin != bytes)
      bad("dtype " + dtypeStr + " and shape need " + std::to_string(bytes) +
          " bytes but data_offsets span " + std::to_string(end - begin));
    view.data = file.data() + dataStart + begin;
    view.bytes = size_t(bytes);
    ranges.push_back({begin, end, name});
    result->tensors_.emplace(name, std::move(view));
  }
  std::sort(ranges.begin(), ranges.end(),
            [](const Range &a, const Range &b) { return a.begin < b.begin; });
  for (size_t i = 1; i < ranges.size(); ++i)
    if (ranges[i].begin < ranges[i - 1].end)
      fail(path, "tensors '" + ranges[i - 1].name + "' and '" + ranges[i].name + "' overlap");
  return result;
}

const TensorView *SafeTensorsFile::find(const std::string &name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

//===----------------------------------------------------------------------===//
// SafeTensorsWriter
//===----------------------------------------------------------------------===//

void SafeTensorsWriter::add(const std::string &name, DType dtype, std::vector<int64_t> shape,
                            std::vector<uint8_t> bytes) {
  entries_.push_back({name, dtype, std::move(shape), std::move(bytes)});
}

size_t SafeTensorsWriter::dataBytes() const {
  size_t n = 0;
  for (const auto &e : entries_)
    n += e.bytes.size();
  return n;
}

std::string SafeTensorsWriter::bytes() const {
  // ordered_json keeps insertion order, so the file is deterministic and
  // tensors appear in the order they were added.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata_.empty())
    header["__metadata__"] = metadata_;
  uint64_t offset = 0;
  for (const auto &e : entries_) {
    header[e.name] = {{"dtype", dtypeName(e.dtype)},
                      {"shape", e.shape},
                      {"data_offsets", {offset, offset + e.bytes.size()}}};
    offset += e.bytes.size();
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  uint64_t len = text.size();
  std::string out(reinterpret_cast<const char *>(&len), 8);
  out += text;
  for (const auto &e : entries_)
    out.append(reinterpret_cast<const char *>(e.bytes.data()), e.bytes.size());
  return out;
}

void SafeTensorsWriter::write(const std::string &path) const { writeFileAtomically(path, bytes()); }

} // namespace kiln
