//===- kiln/runtime.hpp - a thin C++ wrapper over kiln/runtime.h ----------===//
//
// Header-only RAII over the C API: errors become kiln::RuntimeError.
//
//   kiln::Artifact artifact("out/gpt2");
//   kiln::Session session(artifact, /*threads=*/2);
//   std::vector<int32_t> ids = artifact.tokenize("Hello");
//   const float *logits = session.prefill(ids);
//   int32_t next = session.sample({0.8f, 40, 0.95f, 7});
//
//===----------------------------------------------------------------------===//
#ifndef KILN_RUNTIME_HPP
#define KILN_RUNTIME_HPP

#include "kiln/runtime.h"

#include <stdexcept>
#include <string>
#include <vector>

namespace kiln {

class RuntimeError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

inline void check(kiln_status status) {
  if (status) {
    std::string message = kiln_status_message(status);
    kiln_status_free(status);
    throw RuntimeError(message);
  }
}

class Artifact {
public:
  explicit Artifact(const std::string &dir, const kiln_open_options *options = nullptr) {
    check(kiln_artifact_open(dir.c_str(), options, &handle_));
  }
  ~Artifact() { kiln_artifact_close(handle_); }
  Artifact(const Artifact &) = delete;
  Artifact &operator=(const Artifact &) = delete;

  kiln_artifact *get() const { return handle_; }
  int64_t vocabSize() const { return kiln_artifact_vocab_size(handle_); }
  int64_t contextLength() const { return kiln_artifact_context_length(handle_); }
  std::string kernels() const { return kiln_artifact_kernels(handle_); }
  std::string target() const { return kiln_artifact_target(handle_); }
  std::string device() const { return kiln_artifact_device(handle_); }

  std::vector<int32_t> tokenize(const std::string &text) const {
    int32_t *ids = nullptr;
    size_t count = 0;
    check(kiln_tokenize(handle_, text.data(), text.size(), &ids, &count));
    std::vector<int32_t> out(ids, ids + count);
    kiln_free(ids);
    return out;
  }
  std::string detokenize(const std::vector<int32_t> &ids) const {
    char *text = nullptr;
    size_t length = 0;
    check(kiln_detokenize(handle_, ids.data(), ids.size(), &text, &length));
    std::string out(text, length);
    kiln_free(text);
    return out;
  }

private:
  kiln_artifact *handle_ = nullptr;
};

class Session {
public:
  explicit Session(Artifact &artifact, int32_t threads = 0) {
    kiln_session_options options = {threads};
    check(kiln_session_create(artifact.get(), &options, &handle_));
  }
  ~Session() { kiln_session_destroy(handle_); }
  Session(const Session &) = delete;
  Session &operator=(const Session &) = delete;

  const float *prefill(const std::vector<int32_t> &ids) {
    const float *logits = nullptr;
    check(kiln_session_prefill(handle_, ids.data(), ids.size(), &logits));
    return logits;
  }
  const float *decode(int32_t id) {
    const float *logits = nullptr;
    check(kiln_session_decode(handle_, id, &logits));
    return logits;
  }
  int32_t sample(const kiln_sampling &sampling = {0.0f, 0, 1.0f, 0}) {
    int32_t id = 0;
    check(kiln_session_sample(handle_, &sampling, &id));
    return id;
  }
  void reset() { check(kiln_session_reset(handle_)); }
  int64_t position() const { return kiln_session_position(handle_); }

private:
  kiln_session *handle_ = nullptr;
};

/// Slots decoded together (kiln_batch_*; C API 1.3). Slot i is a session the batch owns.
class Batch {
public:
  Batch(Artifact &artifact, int32_t slots, int32_t threads = 0) {
    kiln_batch_options options = {threads, slots};
    check(kiln_batch_create(artifact.get(), &options, &handle_));
  }
  ~Batch() { kiln_batch_destroy(handle_); }
  Batch(const Batch &) = delete;
  Batch &operator=(const Batch &) = delete;

  int64_t slots() const { return kiln_batch_slot_count(handle_); }
  kiln_session *slot(int64_t index) const { return kiln_batch_slot(handle_, index); }
  const float *prefill(int64_t slot, const std::vector<int32_t> &ids) {
    const float *logits = nullptr;
    check(kiln_session_prefill(kiln_batch_slot(handle_, slot), ids.data(), ids.size(), &logits));
    return logits;
  }
  /// One step: ids[i] to slots[i]; count x vocab logits.
  const float *decode(const std::vector<int32_t> &slots, const std::vector<int32_t> &ids) {
    if (slots.size() != ids.size())
      throw RuntimeError("kiln::Batch::decode: one id per slot");
    const float *logits = nullptr;
    check(kiln_batch_decode(handle_, slots.data(), ids.data(), ids.size(), &logits));
    return logits;
  }
  int32_t sample(int64_t slot, const kiln_sampling &sampling = {0.0f, 0, 1.0f, 0}) {
    int32_t id = 0;
    check(kiln_session_sample(kiln_batch_slot(handle_, slot), &sampling, &id));
    return id;
  }
  void reset(int64_t slot) { check(kiln_session_reset(kiln_batch_slot(handle_, slot))); }
  int64_t position(int64_t slot) const { return kiln_session_position(kiln_batch_slot(handle_, slot)); }

private:
  kiln_batch *handle_ = nullptr;
};

} // namespace kiln

#endif
