//===- Engine.h - continuous batching over rt::Batch ----------------------===//
//
// `kiln serve`'s generation engine, MLIR-free. One scheduler thread owns a
// rt::Batch of --parallel slots. Each turn it admits queued requests into
// free slots, prefills at most one newly admitted request (the others keep
// decoding between prefills), then runs one batched decode step for every
// generating slot, samples each slot's next token with that request's own
// options, and publishes the text. A finished or cancelled request frees its
// slot before the next turn. HTTP threads only submit requests and read
// their output.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_TOOLS_SERVE_ENGINE_H
#define KILN_TOOLS_SERVE_ENGINE_H

#include "kiln/Runtime/Runtime.h"
#include "kiln/Runtime/Sampler.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace kiln::serve {

using Clock = std::chrono::steady_clock;

struct GenerationParams {
  int64_t maxTokens = 16;
  SamplingOptions sampling;
  std::vector<std::string> stop; ///< generation ends before the first of these in the text
  bool ignoreEos = false;
  std::string adapter = "none"; ///< a switchable adapter of the artifact (checked by the caller)
};

/// One completion: the engine appends to `text` (complete UTF-8, never a
/// prefix of a stop string that might still complete) and sets `done`.
struct Request {
  std::vector<int32_t> prompt;
  GenerationParams params;

  std::mutex mutex; ///< guards everything below
  std::condition_variable changed;
  std::string text;
  int64_t generated = 0;
  bool done = false;
  std::string finishReason; ///< "stop", "length", "cancelled", "error"
  std::string error;
  Clock::time_point queued, started, firstToken, finished;

  std::atomic<bool> cancelled{false}; ///< set by the HTTP side (client gone)
};

struct EngineStats {
  uint64_t requests = 0, promptTokens = 0, generatedTokens = 0, decodeSteps = 0, decodeRows = 0;
  double promptSeconds = 0, decodeSeconds = 0;
  int64_t queued = 0, busySlots = 0, slots = 0;
};

class Engine {
public:
  Engine(rt::Artifact &artifact, int parallel, int maxQueue, int threads);
  ~Engine();
  /// Queues a request; false when --max-queue requests already wait.
  bool submit(const std::shared_ptr<Request> &request);
  EngineStats stats();
  void stop();

private:
  struct Active {
    std::shared_ptr<Request> request;
    int slot = 0;
    bool prefilled = false;
    int32_t pending = 0; ///< the sampled token the next decode step feeds
    std::unique_ptr<TextStreamer> streamer;
    std::string raw;     ///< all complete text so far
    size_t published = 0; ///< bytes of raw appended to request->text
  };
  void loop();
  void prefill(Active &a);
  /// Takes a sampled token; returns true when the request is finished.
  bool accept(Active &a, int32_t token);
  void publish(Active &a, bool final, const std::string &reason);

  rt::Artifact &artifact_;
  rt::Batch batch_;
  size_t maxQueue_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<Request>> queue_;
  std::vector<Active> active_;
  std::vector<int> freeSlots_;
  bool stopping_ = false;
  EngineStats stats_;
  std::thread thread_;
};

} // namespace kiln::serve

#endif
