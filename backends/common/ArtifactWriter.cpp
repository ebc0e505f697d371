//===- ArtifactWriter.cpp - writing artifact directories ------------------===//
#include "kiln/Backend/Artifact.h"

#include "kiln/Support/Checksum.h"
#include "kiln/Support/Error.h"
#include "kiln/Support/File.h"
#include "kiln/Support/VerifiedStamp.h"

#include <algorithm>
#include <yaml-cpp/yaml.h>

#include <fcntl.h>
#include <filesystem>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
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

/// Puts the complete folder `stage` where `dir` is: swapped in one step (renameat2
/// RENAME_EXCHANGE), so `dir` is always the old artifact or the new one, then the old
/// one (now at `stage`) is removed. Where the filesystem cannot swap, the old folder
/// is renamed aside first and put back if the second rename fails.
void install(const fs::path &stage, const fs::path &dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) {
    fs::rename(stage, dir, ec);
    if (ec)
      fail(dir.string(), "cannot move the new artifact into place: " + ec.message());
    return;
  }
  if (renameat2(AT_FDCWD, stage.c_str(), AT_FDCWD, dir.c_str(), RENAME_EXCHANGE) != 0) {
    fs::path aside = dir;
    aside += ".old-" + std::to_string(getpid());
    fs::rename(dir, aside, ec);
    if (ec)
      fail(dir.string(), "cannot replace the old artifact: " + ec.message());
    fs::rename(stage, dir, ec);
    if (ec) {
      std::error_code ignored;
      fs::rename(aside, dir, ignored);
      fail(dir.string(), "cannot move the new artifact into place: " + ec.message());
    }
    fs::remove_all(aside, ec);
    return;
  }
  fs::remove_all(stage, ec); // the old artifact, now at the staging name
}

} // namespace

void ArtifactWriter::finish() {
  fs::path dir(dir_);
  if (isDirectory(dir)) {
    std::error_code ec;
    if (!fs::is_empty(dir, ec) && !pathExists(dir / "manifest.yaml"))
      fail(dir_, "exists, is not empty and is not an artifact; refusing to overwrite it");
  } else if (pathExists(dir)) {
    fail(dir_, "exists and is not a directory");
  }
  // Everything is written into a staging folder beside `dir` and moved into place
  // whole: a compile that fails part way (a full disk, a failed check, a kill) leaves
  // the old artifact as it was, and at worst a staging folder no reader mistakes
  // for an artifact (its name is not the one asked for).
  fs::path stage = dir.lexically_normal();
  if (stage.filename().empty())
    stage = stage.parent_path();
  stage += ".partial-" + std::to_string(getpid());
  std::error_code ec;
  fs::remove_all(stage, ec);
  fs::create_directories(stage, ec);
  if (ec)
    fail(stage.string(), "cannot create the staging folder: " + ec.message());
  try {
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
    auto write = [&](const std::string &name, const std::string &bytes) {
      writeFile(stage / name, bytes, (dir / name).string()); // the folder is swapped in whole
      std::string checksum = checksumHex(checksum64(bytes.data(), bytes.size()));
      out << YAML::Key << name << YAML::Value << YAML::Flow << YAML::BeginMap << YAML::Key << "bytes" << YAML::Value
          << uint64_t(bytes.size()) << YAML::Key << "checksum" << YAML::Value << checksum << YAML::EndMap;
      return checksum;
    };
    for (const auto &[name, bytes] : files_)
      write(name, bytes);
    for (const auto &[name, from] : copies_)
      write(name, readFile(from));
    std::string weightsChecksum = write("weights.bin", weightBytes_);
    // The runtime's first open need not hash what was just written (VerifiedStamp.h); the
    // folder swap below keeps the file's inode and times.
    struct stat st;
    if (::stat((stage / "weights.bin").c_str(), &st) == 0)
      recordVerifiedStamp(st, weightsChecksum);
    out << YAML::EndMap;

    out << YAML::Key << "weights" << YAML::Value << YAML::BeginSeq;
    for (const auto &w : weights_)
      out << YAML::Flow << YAML::BeginMap << YAML::Key << "name" << YAML::Value << w.name << YAML::Key << "layout"
          << YAML::Value << w.layout << YAML::Key << "dtype" << YAML::Value << w.dtype << YAML::Key << "shape"
          << YAML::Value << YAML::Flow << w.shape << YAML::Key << "offset" << YAML::Value << w.offset << YAML::Key
          << "bytes" << YAML::Value << w.bytes << YAML::EndMap;
    out << YAML::EndSeq << YAML::EndMap;
    for (const auto &check : checks_)
      check(stage.string());
    writeFile(stage / "manifest.yaml", std::string(out.c_str()) + "\n", (dir / "manifest.yaml").string());
    install(stage, dir);
  } catch (...) {
    std::error_code ignored;
    fs::remove_all(stage, ignored);
    throw;
  }
}

} // namespace kiln
