//===- Artifact.h - writing artifact directories --------------------------===//
//
// An artifact is a directory: manifest.yaml, the target's code (model.so),
// weights.bin (64-byte aligned, packed for the target's kernels) and the
// tokenizer files. See docs/artifact.md. Backends fill an ArtifactWriter;
// `finish` writes everything into a staging folder and swaps it into place,
// so the directory is always the old artifact or the complete new one.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_BACKEND_ARTIFACT_H
#define KILN_BACKEND_ARTIFACT_H

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace kiln {

/// The artifact format this build writes (and the newest its runtime reads).
/// An artifact is written as version 1 unless it needs 2: batched decode
/// specializations, which a version-1 reader would mistake for decode.
inline constexpr int kArtifactFormatVersion = 2;

struct WeightEntry {
  std::string name;   ///< e.g. "h.0.attn.c_attn.weight"
  std::string layout; ///< "panel16" or "rowmajor"
  std::string dtype;  ///< "f32"
  std::vector<int64_t> shape; ///< Logical shape.
  uint64_t offset = 0, bytes = 0;
};

struct Specialization {
  std::string name;     ///< "prefill", "decode" or "decode_b<B>"
  std::string symbol;   ///< Graph function in model.so.
  int64_t tokens = 0;   ///< Slots per call (per sequence).
  uint64_t arenaBytes = 0;
  int64_t batch = 1;    ///< Sequences per call (> 1: a batched decode; format version 2).
};

class ArtifactWriter {
public:
  explicit ArtifactWriter(std::string dir) : dir_(std::move(dir)) {}
  const std::string &dir() const { return dir_; }

  /// Appends a weight (64-byte aligned) and returns its offset in weights.bin.
  uint64_t addWeight(WeightEntry entry, const void *data);
  const std::vector<WeightEntry> &weights() const { return weights_; }

  /// A file of the artifact (model.so, ...), written by finish().
  void addFile(const std::string &name, std::string bytes) { files_[name] = std::move(bytes); }
  /// A file copied from disk by finish() (tokenizer files).
  void copyFile(const std::string &name, const std::string &from) { copies_[name] = from; }

  void addSpecialization(Specialization s) { specs_.push_back(std::move(s)); }

  /// Free-form manifest sections (model config, target, pipeline), as YAML text.
  void setSection(const std::string &key, std::string yaml) { sections_[key] = std::move(yaml); }

  /// A check run by finish() on the written files (given the staging folder),
  /// before the artifact is moved into place (a failed check leaves the old one).
  void addCheck(std::function<void(const std::string &dir)> check) { checks_.push_back(std::move(check)); }

  /// Writes the directory; throws kiln::Error naming the path on failure.
  void finish();

private:
  std::string dir_;
  std::string weightBytes_;
  std::vector<WeightEntry> weights_;
  std::map<std::string, std::string> files_, copies_, sections_;
  std::vector<Specialization> specs_;
  std::vector<std::function<void(const std::string &)>> checks_;
};

} // namespace kiln

#endif
