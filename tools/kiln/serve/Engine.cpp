//===- Engine.cpp - continuous batching over rt::Batch --------------------===//
#include "Engine.h"

#include "kiln/Support/Error.h"

#include <algorithm>

namespace kiln::serve {

namespace {
double secondsSince(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

/// Bytes at the end of `text` that could still grow into one of `stops`.
size_t stopHoldback(const std::string &text, const std::vector<std::string> &stops) {
  size_t keep = 0;
  for (const auto &s : stops)
    for (size_t k = std::min(s.size() - 1, text.size()); k > keep; --k)
      if (text.compare(text.size() - k, k, s, 0, k) == 0) {
        keep = k;
        break;
      }
  return keep;
}
} // namespace

Engine::Engine(rt::Artifact &artifact, int parallel, int maxQueue, int threads)
    : artifact_(artifact), batch_(artifact, threads, parallel), maxQueue_(size_t(maxQueue)) {
  for (int i = parallel - 1; i >= 0; --i)
    freeSlots_.push_back(i);
  stats_.slots = parallel;
  artifact.tokenizer(); // loaded once, before any thread needs it
  thread_ = std::thread([this] { loop(); });
}

Engine::~Engine() { stop(); }

void Engine::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable())
    thread_.join();
}

bool Engine::submit(const std::shared_ptr<Request> &request) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    // Free slots take queued requests at the next turn: only requests beyond them wait.
    if (stopping_ || queue_.size() >= maxQueue_ + freeSlots_.size())
      return false;
    request->queued = Clock::now();
    queue_.push_back(request);
    stats_.queued = int64_t(queue_.size());
  }
  wake_.notify_all();
  return true;
}

EngineStats Engine::stats() {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

void Engine::publish(Active &a, bool final, const std::string &reason) {
  Request &r = *a.request;
  size_t end = final ? a.raw.size() : a.raw.size() - stopHoldback(a.raw, r.params.stop);
  {
    std::lock_guard<std::mutex> lock(r.mutex);
    if (end > a.published)
      r.text.append(a.raw, a.published, end - a.published);
    a.published = std::max(a.published, end);
    if (final) {
      r.done = true;
      r.finishReason = reason;
      r.finished = Clock::now();
    }
  }
  r.changed.notify_all();
}

bool Engine::accept(Active &a, int32_t token) {
  Request &r = *a.request;
  {
    std::lock_guard<std::mutex> lock(r.mutex);
    if (r.generated++ == 0)
      r.firstToken = Clock::now();
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++stats_.generatedTokens;
  }
  // The end of a stop string, searched from what is not yet published (a stop
  // string cannot start there: its prefixes are held back).
  auto stopAt = [&]() {
    size_t cut = std::string::npos;
    for (const auto &s : r.params.stop)
      cut = std::min(cut, a.raw.find(s, a.published));
    return cut;
  };
  bool eos = !r.params.ignoreEos && token == artifact_.eosTokenId();
  if (!eos)
    a.raw += a.streamer->push(token);
  bool last = eos || r.generated >= r.params.maxTokens ||
              batch_.slot(a.slot).position() >= artifact_.contextLength();
  if (last)
    a.raw += a.streamer->flush(); // an incomplete character at the very end is sent as it is
  if (size_t cut = stopAt(); cut != std::string::npos) {
    a.raw.resize(cut);
    publish(a, true, "stop");
    return true;
  }
  if (last) {
    publish(a, true, eos ? "stop" : "length");
    return true;
  }
  a.pending = token;
  publish(a, false, "");
  return false;
}

void Engine::prefill(Active &a) {
  Request &r = *a.request;
  rt::Session &s = batch_.slot(a.slot);
  s.reset();
  s.setAdapter(r.params.adapter); // the batch steps slots of different adapters in one group each
  {
    std::lock_guard<std::mutex> lock(r.mutex);
    r.started = Clock::now();
  }
  auto t0 = Clock::now();
  s.feedPrompt(r.prompt.data(), r.prompt.size());
  int32_t token = s.sample(r.params.sampling);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.promptTokens += r.prompt.size();
    stats_.promptSeconds += secondsSince(t0);
  }
  a.prefilled = true;
  a.streamer = std::make_unique<TextStreamer>(artifact_.tokenizer());
  if (accept(a, token))
    a.request.reset(); // finished: the slot is freed below
}

void Engine::loop() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !active_.empty() || (!queue_.empty() && !freeSlots_.empty()); });
      if (stopping_)
        break;
      while (!queue_.empty() && !freeSlots_.empty()) {
        Active a;
        a.request = queue_.front();
        queue_.pop_front();
        a.slot = freeSlots_.back();
        freeSlots_.pop_back();
        active_.push_back(std::move(a));
      }
      stats_.queued = int64_t(queue_.size());
      stats_.busySlots = int64_t(active_.size());
    }
    auto fail = [&](Active &a, const std::string &message) {
      {
        std::lock_guard<std::mutex> lock(a.request->mutex);
        a.request->error = message;
      }
      publish(a, true, "error");
      a.request.reset();
    };
    // A client that went away stops its generation now.
    for (auto &a : active_)
      if (a.request && a.request->cancelled.load()) {
        publish(a, true, "cancelled");
        a.request.reset();
      }
    // At most one prefill per turn, so the generating slots keep stepping between them.
    for (auto &a : active_)
      if (a.request && !a.prefilled) {
        try {
          prefill(a);
        } catch (const std::exception &e) {
          fail(a, e.what());
        }
        break;
      }
    std::vector<int32_t> slots, ids;
    std::vector<Active *> rows;
    for (auto &a : active_)
      if (a.request && a.prefilled) {
        slots.push_back(a.slot);
        ids.push_back(a.pending);
        rows.push_back(&a);
      }
    if (!rows.empty()) {
      auto t0 = Clock::now();
      try {
        batch_.decode(slots.data(), ids.data(), slots.size());
        {
          std::lock_guard<std::mutex> lock(mutex_);
          stats_.decodeSeconds += secondsSince(t0);
          ++stats_.decodeSteps;
          stats_.decodeRows += rows.size();
        }
        for (Active *a : rows) {
          int32_t token = batch_.slot(a->slot).sample(a->request->params.sampling);
          if (accept(*a, token))
            a->request.reset();
        }
      } catch (const std::exception &e) {
        for (Active *a : rows)
          if (a->request)
            fail(*a, e.what());
      }
    }
    // Finished requests free their slots for the next turn.
    std::lock_guard<std::mutex> lock(mutex_);
    for (size_t i = 0; i < active_.size();) {
      if (active_[i].request) {
        ++i;
        continue;
      }
      ++stats_.requests;
      freeSlots_.push_back(active_[i].slot);
      active_.erase(active_.begin() + long(i));
    }
    stats_.busySlots = int64_t(active_.size());
  }
  // Shutting down: whatever is still running or queued ends now.
  for (auto &a : active_)
    if (a.request)
      publish(a, true, "cancelled");
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto &r : queue_) {
    {
      std::lock_guard<std::mutex> rl(r->mutex);
      r->done = true;
      r->finishReason = "cancelled";
    }
    r->changed.notify_all();
  }
  queue_.clear();
}

} // namespace kiln::serve
