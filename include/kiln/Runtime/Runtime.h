//===- Runtime.h - artifacts and sessions (C++; MLIR-free) ----------------===//
//
// The implementation behind kiln/runtime.h. Throws kiln::Error with a
// message naming the file or the problem; the C API turns it into a status.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_RUNTIME_RUNTIME_H
#define KILN_RUNTIME_RUNTIME_H

#include "kiln/Runtime/Sampler.h"
#include "kiln/Runtime/Tokenizer.h"

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace kiln::rt {

/// The artifact format versions this runtime reads.
inline constexpr int kNewestFormatVersion = 2;

/// Bits of KilnKernelTable-relevant CPU features (KernelABI.h's KILN_CPU_*).
uint64_t hostCpuFeatures();
/// Whether the host has the named x86 feature ("avx2", "avx512f", ...);
/// unknown names return false.
bool hostHasFeature(const std::string &name);

/// The GPUs this runtime can run artifacts on, by API: {"vulkan", lines}, {"cuda", lines}; each
/// line "INDEX: NAME, ..." (the index --device takes), or the one-line reason the API has none.
std::vector<std::pair<std::string, std::vector<std::string>>> listDevices();

class ThreadPool;
class DeviceProgram;
/// Frees what std::aligned_alloc returned (the runtime's arenas and KV caches).
struct AlignedFree {
  void operator()(void *p) const { std::free(p); }
};
using AlignedFloats = std::unique_ptr<float, AlignedFree>;
/// `floats` zeroed floats, 64-byte aligned (at least one cache line).
AlignedFloats alignedZeros(size_t floats);
class DeviceContext;
class Profiler;

class Artifact {
public:
  struct Options {
    std::string kernels = "auto";
    bool skipWeightChecksum = false;
    int device = 0; ///< GPU artifacts: the device's index among the API's devices
  };
  static std::unique_ptr<Artifact> open(const std::string &dir, const Options &options);
  ~Artifact();

  const std::string &dir() const { return dir_; }
  int64_t vocabSize() const { return vocab_; }
  int64_t contextLength() const { return ctxLen_; }
  int64_t promptLength() const { return promptLen_; }
  /// The checkpoint's eos_token_id (-1 if the manifest has none).
  int64_t eosTokenId() const { return eos_; }
  int64_t layers() const { return layers_; }
  int64_t heads() const { return heads_; } ///< The checkpoint's n_head.
  int64_t headDim() const { return headDim_; }
  uint64_t weightBytes() const { return weightBytes_; }
  /// Bytes of weights one decode step reads: all of them but the tables it only gathers a row
  /// from (the position table; the token table of an untied model), and one adapter block.
  uint64_t decodeReadBytes() const { return decodeReadBytes_; }
  /// Bytes of layer l's key cache buffer (its value cache is the same size).
  size_t cacheBytes(int64_t layer) const { return cacheBytes_.at(size_t(layer)); }
  const std::string &kernels() const { return kernels_; }
  /// The manifest's target: cpu, vulkan.
  const std::string &target() const { return target_; }
  /// The device a GPU artifact runs on ("vulkan: llvmpipe (...)"); empty for cpu.
  const std::string &device() const { return device_name_; }
  const Tokenizer &tokenizer(); ///< Loaded on first use.
  /// The switchable adapters compiled in (kiln compile --adapters), in order; "none" not listed.
  std::vector<std::string> adapters() const;
  /// The decode batch sizes compiled in (kiln compile --decode-batch), ascending, 1 first.
  std::vector<int64_t> decodeBatchSizes() const;

private:
  friend class Session;
  friend class Batch;
  Artifact() = default;
  struct Graph {
    void (*fn)(void **, const void *) = nullptr;
    int64_t tokens = 0;
    uint64_t arenaBytes = 0;
    int64_t batch = 1;
  };
  std::string dir_;
  void *library_ = nullptr;
  const uint8_t *weights_ = nullptr;
  uint64_t weightBytes_ = 0, decodeReadBytes_ = 0;
  Graph prefill_, decode_;
  std::vector<Graph> batched_; ///< decode_b<B> (B > 1), ascending
  int64_t eos_ = -1;
  int64_t vocab_ = 0, ctxLen_ = 0, promptLen_ = 0, layers_ = 0, heads_ = 0, headDim_ = 0;
  std::vector<size_t> cacheBytes_; ///< Per layer, by the manifest's cache_heads and kv_cache format.
  std::string kernels_, target_, device_name_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::once_flag tokenizerOnce_; ///< threads may ask for the tokenizer at once; it loads once
  std::unique_ptr<DeviceProgram> device_; ///< GPU artifacts
  struct AdapterBlock {
    std::string name;
    uint64_t offset = 0, bytes = 0;
  };
  std::vector<AdapterBlock> adapterBlocks_; ///< "none" first (docs/adapters.md)
  uint32_t modelAbi_ = 0;                   ///< cpu: the model library's KILN_MODEL_ABI_VERSION
};

class Session {
public:
  Session(Artifact &artifact, int threads);
  /// Runs on `poolOwner`'s worker threads, never at the same time as it:
  /// two sessions stepped in turn then do not compete with each other's
  /// spinning workers (kiln bench --against).
  Session(Artifact &artifact, const Session &poolOwner);
  ~Session();
  /// Feed the prompt (in prefill chunks) or one more token; return the logits after the last.
  const float *prefill(const int32_t *ids, size_t count);
  const float *decode(int32_t id);
  /// prefill/decode without the logits: a GPU artifact then reads nothing back until
  /// logits() or greedy() asks (greedy() reads one id, picked on the device).
  void feedPrompt(const int32_t *ids, size_t count);
  void feedToken(int32_t id);
  void reset();
  int64_t position() const { return position_; }
  const float *logits();
  /// The greedy id after the last step (the sampler's rule: largest logit, lowest id on ties).
  int32_t greedy();
  int32_t sample(const SamplingOptions &options);
  int threads() const;
  /// Selects a switchable adapter by name ("none": the base model, the default) for the
  /// tokens fed from now on; the cache keeps what earlier tokens computed (reset() for a
  /// sequence entirely under the new adapter). Throws kiln::Error for an unknown name.
  void setAdapter(const std::string &name);
  const std::string &adapter() const { return adapter_; }
  /// Profiles this session's graph runs and picks into `profiler` (nullptr: stop); cpu
  /// artifacts of model ABI 3 or later only (kiln/Runtime/Profile.h). Throws kiln::Error otherwise.
  void setProfiler(Profiler *profiler);

private:
  friend class Batch;
  void run(const Artifact::Graph &graph, const int32_t *ids, size_t count);
  /// pick(), its time charged to the profiler's sampling when one is attached.
  template <typename Pick> int32_t timedPick(Pick pick);
  void checkIds(const int32_t *ids, size_t count);

  Artifact &artifact_;
  Session(Artifact &artifact, std::shared_ptr<ThreadPool> pool);
  std::shared_ptr<ThreadPool> pool_;
  AlignedFloats arena_;
  std::vector<AlignedFloats> caches_;
  std::vector<float> logits_;
  std::vector<int32_t> ids_, positions_;
  int64_t position_ = 0;
  bool haveLogits_ = false, logitsRead_ = false;
  std::unique_ptr<DeviceContext> context_; ///< GPU artifacts: caches and activations on the device
  std::unique_ptr<Sampler> sampler_;
  SamplingOptions samplerOptions_;
  std::string adapter_ = "none";
  const uint8_t *adapterBlock_ = nullptr;
  Profiler *profiler_ = nullptr;
};

/// Sequences decoded together (kiln compile --decode-batch): `slots` sessions
/// on one thread pool, and decode steps that feed one token to each of many
/// of them in one call of a batched graph, which reads every weight once for
/// all of them. A slot is an ordinary Session (prefill, sample, reset, adapters)
/// that runs on the batch's threads. Contract: a batched step gives each
/// sequence bit-identical logits to decoding it alone (the kernels compute
/// each row as they compute one, KernelABI.h's KILN_DECODE_MAX_ROWS).
/// Used by one thread at a time, slots included.
class Batch {
public:
  Batch(Artifact &artifact, int threads, int slots);
  ~Batch();
  int slots() const { return int(slots_.size()); }
  Session &slot(int index) { return *slots_.at(size_t(index)); }
  /// Feeds ids[i] to slot slots[i] (distinct slots) and returns count x vocab
  /// logits, row i for slots[i], valid until the next call on the batch; each
  /// slot's logits() are its row too. Rows go through the smallest compiled
  /// batch that holds them (padded), in several steps past the largest, one
  /// group per adapter. Validates everything before running anything.
  const float *decode(const int32_t *slots, const int32_t *ids, size_t count);
  /// Graph calls made so far (each reads the weights once; kiln bench --batch's GB/s).
  uint64_t steps() const { return steps_; }

private:
  void step(const Artifact::Graph &graph, const std::vector<size_t> &rows, const int32_t *slots, const int32_t *ids);

  Artifact &artifact_;
  std::shared_ptr<ThreadPool> pool_;
  std::vector<std::unique_ptr<Session>> slots_;
  AlignedFloats arena_;
  std::vector<float> logits_, out_;
  std::vector<int32_t> ids_, positions_;
  std::vector<std::vector<void *>> tables_; ///< per cache: one pointer per batch row
  uint64_t steps_ = 0;
};

} // namespace kiln::rt

#endif
