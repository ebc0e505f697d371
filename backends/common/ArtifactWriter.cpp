//===- ArtifactWriter.cpp - writing artifact directories ------------------===//
#include "kiln/Backend/Artifact.h"

#include "kiln/Support/Checksum.h"
#include "kiln/Support/Error.h"
#include "kiln/Support/File.h"

#include <algorithm>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;

namespace kiln {

uint64_t ArtifactWriter::addWeight(WeightEntry entry, const void *data) {
  weightBytes_.append((64 - weightBytes_.size() % 64) % 64, '\0');
  entry.offset = weightBytes_.size();
  weightBytes_.append(static_cast<const char *>(data), entry.bytes);
  weights_.push_back(std::move(entry));
  return weights_.back().offset;
}

namespace {
void writeAtomically(const fs::path &path, const std::string &bytes) {
  fs::path tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out)
      fail(tmp.string(), "cannot open for writing");
    out.write(bytes.data(), std::streamsize(bytes.size()));
    if (!out)
      fail(tmp.string(), "write failed (disk full?)");
  }
  fs::rename(tmp, path);
}

} // namespace

void ArtifactWriter::finish() {
  fs::path dir(dir_);
  if (fs::exists(dir) && !fs::is_directory(dir))
    fail(dir_, "exists and is not a directory");
  if (fs::is_directory(dir) && !fs::is_empty(dir) && !fs::exists(dir / "manifest.yaml"))
    fail(dir_, "exists, is not empty and is not an artifact; refusing to overwrite it");
  fs::create_directories(dir);
  // The old artifact goes first, manifest first: a crash mid-way leaves no valid-looking
  // artifact, and a failed check below leaves none of the old target's files (another
  // target's model.so beside this one's files would make the folder no artifact at all).
  if (fs::exists(dir / "manifest.yaml")) {
    std::vector<std::string> old;
    try {
      for (const auto &entry : YAML::LoadFile((dir / "manifest.yaml").string())["files"])
        old.push_back(entry.first.as<std::string>());
    } catch (const YAML::Exception &) {
      // An unreadable manifest: only it goes; the files written below replace theirs.
    }
    fs::remove(dir / "manifest.yaml");
    std::error_code ignored;
    for (const auto &name : old)
      if (fs::path(name).filename() == fs::path(name)) // a plain file name, nothing outside the folder
        fs::remove(dir / name, ignored);
  }

  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "format" << YAML::Value << "kiln-artifact";
  bool batched = std::any_of(specs_.begin(), specs_.end(), [](const Specialization &s) { return s.batch > 1; });
  out << YAML::Key << "format_version" << YAML::Value << (batched ? kArtifactFormatVersion : 1);
  for (const auto &[key, yaml] : sections_)
    out << YAML::Key << key << YAML::Value << YAML::Load(yaml);
  out << YAML::Key << "specializations" << YAML::Value << YAML::BeginSeq;
  for (const auto &s : specs_) {
    out << YAML::Flow << YAML::BeginMap << YAML::Key << "name" << YAML::Value << s.name << YAML::Key << "symbol"
        << YAML::Value << s.symbol << YAML::Key << "tokens" << YAML::Value << s.tokens << YAML::Key
        << "arena_bytes" << YAML::Value << s.arenaBytes;
    if (s.batch > 1)
      out << YAML::Key << "batch" << YAML::Value << s.batch;
    out << YAML::EndMap;
  }
  out << YAML::EndSeq;

  out << YAML::Key << "files" << YAML::Value << YAML::BeginMap;
  auto fileEntry = [&](const std::string &name, const std::string &bytes) {
    out << YAML::Key << name << YAML::Value << YAML::Flow << YAML::BeginMap << YAML::Key << "bytes" << YAML::Value
        << uint64_t(bytes.size()) << YAML::Key << "checksum" << YAML::Value << checksumHex(checksum64(bytes.data(), bytes.size()))
        << YAML::EndMap;
  };
  for (const auto &[name, bytes] : files_) {
    writeAtomically(dir / name, bytes);
    fileEntry(name, bytes);
  }
  for (const auto &[name, from] : copies_) {
    std::string bytes = readFile(from);
    writeAtomically(dir / name, bytes);
    fileEntry(name, bytes);
  }
  writeAtomically(dir / "weights.bin", weightBytes_);
  fileEntry("weights.bin", weightBytes_);
  out << YAML::EndMap;

  out << YAML::Key << "weights" << YAML::Value << YAML::BeginSeq;
  for (const auto &w : weights_)
    out << YAML::Flow << YAML::BeginMap << YAML::Key << "name" << YAML::Value << w.name << YAML::Key << "layout"
        << YAML::Value << w.layout << YAML::Key << "dtype" << YAML::Value << w.dtype << YAML::Key << "shape"
        << YAML::Value << YAML::Flow << w.shape << YAML::Key << "offset" << YAML::Value << w.offset << YAML::Key
        << "bytes" << YAML::Value << w.bytes << YAML::EndMap;
  out << YAML::EndSeq << YAML::EndMap;
  try {
    for (const auto &check : checks_)
      check(dir_);
  } catch (...) {
    // What this compile wrote goes again: the next compile may reuse the folder.
    std::error_code ignored;
    for (const auto &[name, bytes] : files_)
      fs::remove(dir / name, ignored);
    for (const auto &[name, from] : copies_)
      fs::remove(dir / name, ignored);
    fs::remove(dir / "weights.bin", ignored);
    if (fs::is_empty(dir, ignored))
      fs::remove(dir, ignored);
    throw;
  }
  writeAtomically(dir / "manifest.yaml", std::string(out.c_str()) + "\n");
}

} // namespace kiln
