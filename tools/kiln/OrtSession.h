//===- OrtSession.h - onnx artifacts run in ONNX Runtime, for kiln run/eval -===//
//
// MLIR-free. `kiln run` and `kiln eval` on an onnx artifact drive the
// backend's ONNX Runtime runner (lib/kiln/onnx/kiln-ort.js beside the kiln
// binary, `node ... --serve`) over a pipe: the same generation and scoring
// loops as for cpu artifacts, with ORT computing the logits.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_TOOLS_ORTSESSION_H
#define KILN_TOOLS_ORTSESSION_H

#include <cstdint>
#include <cstdio>
#include <string>
#include <sys/types.h>
#include <vector>

namespace kiln {

/// True when `dir`'s manifest names the onnx target.
bool isOnnxArtifact(const std::string &dir);

class OrtSession {
public:
  /// Starts the runner on the artifact; throws kiln::Error (no node, no
  /// onnxruntime-node, a model ORT refuses) with the runner's message.
  OrtSession(const std::string &artifactDir, int threads);
  ~OrtSession();
  OrtSession(const OrtSession &) = delete;
  OrtSession &operator=(const OrtSession &) = delete;

  /// Feeds tokens after those already in (prefill chunks, or one decode
  /// step); returns the logits after the last one.
  std::vector<float> append(const std::vector<int32_t> &ids);
  void reset();
  /// Selects a switchable adapter (artifacts compiled with --adapters; none: the base model).
  void setAdapter(const std::string &name);
  int64_t position() const { return position_; }
  int64_t vocabSize() const { return vocab_; }
  int64_t contextLength() const { return ctx_; }

private:
  std::string readLine();
  void send(const std::string &line);

  std::string dir_;
  pid_t pid_ = -1;
  FILE *in_ = nullptr, *out_ = nullptr; ///< the runner's stdout, stdin
  int64_t vocab_ = 0, ctx_ = 0, position_ = 0;
};

} // namespace kiln

#endif
