//===- Batch.cpp - sequences decoded together -----------------------------===//
//
// A batched decode graph (decode_b<B>) takes B token ids and positions and,
// in place of each KV cache buffer, a table of B cache pointers: row b reads
// and writes sequence b's own cache. So a slot is an ordinary Session whose
// caches the batch points the graph at; nothing is copied in or out.
//
//===----------------------------------------------------------------------===//
#include "kiln/Runtime/Runtime.h"

#include "ModelCall.h"
#include "ThreadPool.h"
#include "kiln/Support/Error.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <set>

namespace kiln::rt {

Batch::Batch(Artifact &artifact, int threads, int slots) : artifact_(artifact) {
  if (slots < 1 || slots > 4096)
    throw Error("a batch needs 1..4096 slots, got " + std::to_string(slots));
  pool_ = std::make_shared<ThreadPool>(threads);
  for (int i = 0; i < slots; ++i)
    slots_.emplace_back(new Session(artifact, pool_));
  int64_t widest = artifact.batched_.empty() ? 1 : artifact.batched_.back().batch;
  uint64_t arena = 0;
  for (const auto &g : artifact.batched_)
    arena = std::max(arena, g.arenaBytes);
  arena_ = alignedZeros(arena / sizeof(float) + 1);
  logits_.assign(size_t(widest * artifact.vocab_), 0.0f);
  ids_.assign(size_t(widest), 0);
  positions_.assign(size_t(widest), -1);
  tables_.assign(size_t(2 * artifact.layers_), std::vector<void *>(size_t(widest), nullptr));
}

Batch::~Batch() = default;

const float *Batch::decode(const int32_t *slots, const int32_t *ids, size_t count) {
  if (count == 0)
    throw Error("a batch decode step needs at least one sequence");
  std::set<int32_t> seen;
  for (size_t i = 0; i < count; ++i) {
    if (slots[i] < 0 || slots[i] >= int32_t(slots_.size()))
      throw Error("slot " + std::to_string(slots[i]) + " does not exist (the batch has " +
                  std::to_string(slots_.size()) + ")");
    if (!seen.insert(slots[i]).second)
      throw Error("slot " + std::to_string(slots[i]) + " appears twice in one decode step");
    try {
      slots_[size_t(slots[i])]->checkIds(&ids[i], 1);
    } catch (const Error &e) {
      throw Error("slot " + std::to_string(slots[i]) + ": " + e.what());
    }
  }
  const size_t V = size_t(artifact_.vocab_);
  out_.resize(count * V);
  // One group per adapter (a graph reads one adapter block), in request order.
  std::vector<std::vector<size_t>> groups;
  std::map<const uint8_t *, size_t> groupOf;
  for (size_t i = 0; i < count; ++i) {
    const uint8_t *block = slots_[size_t(slots[i])]->adapterBlock_;
    auto [it, added] = groupOf.emplace(block, groups.size());
    if (added)
      groups.emplace_back();
    groups[it->second].push_back(i);
  }
  const size_t widest = artifact_.batched_.empty() ? 1 : size_t(artifact_.batched_.back().batch);
  for (const auto &group : groups) {
    for (size_t begin = 0; begin < group.size(); begin += widest) {
      std::vector<size_t> rows(group.begin() + long(begin), group.begin() + long(std::min(group.size(), begin + widest)));
      const Artifact::Graph *graph = nullptr;
      for (const auto &g : artifact_.batched_)
        if (size_t(g.batch) >= rows.size()) {
          graph = &g;
          break;
        }
      if (rows.size() == 1 || !graph || artifact_.device_) { // one row, or a GPU artifact: decode each alone
        for (size_t i : rows) {
          Session &s = *slots_[size_t(slots[i])];
          s.feedToken(ids[i]);
          std::memcpy(out_.data() + i * V, s.logits(), V * sizeof(float));
          ++steps_;
        }
        continue;
      }
      step(*graph, rows, slots, ids);
    }
  }
  return out_.data();
}

void Batch::step(const Artifact::Graph &graph, const std::vector<size_t> &rows, const int32_t *slots,
                 const int32_t *ids) {
  const size_t V = size_t(artifact_.vocab_), B = size_t(graph.batch);
  Session &first = *slots_[size_t(slots[rows[0]])];
  for (size_t r = 0; r < B; ++r) {
    bool real = r < rows.size();
    Session &s = real ? *slots_[size_t(slots[rows[r]])] : first;
    ids_[r] = real ? ids[rows[r]] : 0;
    positions_[r] = real ? int32_t(s.position_) : -1; // padding: no cache write, no attention
    for (size_t c = 0; c < tables_.size(); ++c)
      tables_[c][r] = s.caches_[c].get();
  }
  std::vector<void *> buffers = {const_cast<uint8_t *>(artifact_.weights_), arena_.get(), ids_.data(),
                                 positions_.data(), logits_.data()};
  for (auto &t : tables_)
    buffers.push_back(t.data());
  buffers.push_back(const_cast<uint8_t *>(first.adapterBlock_)); // read only by models with adapters
  callModel(graph.fn, buffers.data(), static_cast<const void *>(&pool_->context()));
  for (size_t r = 0; r < rows.size(); ++r) {
    Session &s = *slots_[size_t(slots[rows[r]])];
    const float *row = logits_.data() + r * V;
    std::memcpy(out_.data() + rows[r] * V, row, V * sizeof(float));
    std::memcpy(s.logits_.data(), row, V * sizeof(float));
    s.position_ += 1;
    s.haveLogits_ = true;
  }
  ++steps_;
}

} // namespace kiln::rt
