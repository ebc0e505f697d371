//===- ReferenceApi.cpp - kiln/reference.h over the reference interpreter -===//
//
// The C API the Python package (and any other host) reaches the interpreter by.
// A model is one imported or parsed module; each session is a ReferenceModel over
// it (its own interpreter state and KV cache), so sessions are independent.
//
//===----------------------------------------------------------------------===//
#include "kiln/reference.h"

#include "Commands.h"

#include "kiln/IR/KilnDialect.h"
#include "kiln/Interpreter/Interpreter.h"
#include "kiln/Runtime/CApiSupport.h"
#include "kiln/Runtime/Sampler.h"
#include "kiln/Support/Error.h"

#include <algorithm>
#include <filesystem>
#include <thread>

struct kiln_reference {
  kiln::LoadedModel model;
  std::string adapter; ///< a switchable adapter every session runs ("" for none)
  int64_t vocab = 0, ctx = 0, prompt = 0, eos = -1;
};

struct kiln_reference_session {
  explicit kiln_reference_session(mlir::ModuleOp module) : ref(module) {}
  kiln::ReferenceModel ref;
  /// Sized once: the pointer handed out stays the same for the session's life (hosts keep views of it).
  std::vector<float> logits;
  bool haveLogits = false;
  std::unique_ptr<kiln::Sampler> sampler;
  kiln::SamplingOptions samplerOptions;
};

using kiln::capi::guarded;
using kiln::capi::invalid;

namespace {
constexpr int64_t kDefaultReferencePromptLen = 16;
} // namespace

extern "C" {

kiln_status kiln_reference_open(const char *path,
                                                                       const kiln_reference_options *options,
                                                                       kiln_reference **out) {
  if (!path || !out)
    return invalid("kiln_reference_open: path and out must not be null");
  return guarded([&] {
    auto r = std::make_unique<kiln_reference>();
    kiln::ImportOptions import;
    bool isDir = std::filesystem::is_directory(path);
    std::string adapter = options && options->adapter ? options->adapter : "";
    if (isDir) {
      if (options && (options->ctx_len < 0 || options->prompt_len < 0))
        throw kiln::Error(std::string(path) + ": ctx_len and prompt_len must be >= 0");
      import.ctxLen = options ? options->ctx_len : 0;
      import.promptLen = options && options->prompt_len ? options->prompt_len : kDefaultReferencePromptLen;
      if (import.ctxLen > 0)
        import.promptLen = std::min(import.promptLen, import.ctxLen);
      import.mergeAdapter = adapter;
    } else if (options && (options->ctx_len || options->prompt_len)) {
      throw kiln::Error(std::string(path) + ": a .mlir file has its shapes fixed: ctx_len and prompt_len do not apply");
    }
    r->model = kiln::loadModel(path, import);
    if (!isDir)
      r->adapter = adapter;
    kiln::ReferenceModel probe(*r->model.module); // validates the module's functions
    if (!r->adapter.empty())
      probe.interpreter().setAdapter(r->adapter); // an unknown name fails here, not per session
    r->vocab = probe.vocabSize();
    r->ctx = probe.contextLen();
    r->prompt = probe.promptLen();
    if (auto config = (*r->model.module)->getAttrOfType<mlir::DictionaryAttr>(kiln::kConfigAttr))
      if (auto eos = config.getAs<mlir::IntegerAttr>("eos_token_id"))
        r->eos = eos.getInt();
    *out = r.release();
  });
}

void kiln_reference_close(kiln_reference *r) { delete r; }

int64_t kiln_reference_vocab_size(const kiln_reference *r) {
  return r ? r->vocab : 0;
}
int64_t kiln_reference_context_length(const kiln_reference *r) {
  return r ? r->ctx : 0;
}
int64_t kiln_reference_prompt_length(const kiln_reference *r) {
  return r ? r->prompt : 0;
}
int64_t kiln_reference_eos_token_id(const kiln_reference *r) {
  return r ? r->eos : -1;
}
const char *kiln_reference_checkpoint_dir(const kiln_reference *r) {
  return r ? r->model.checkpointDir.c_str() : "";
}

kiln_status
kiln_reference_session_create(kiln_reference *r, int32_t threads, kiln_reference_session **out) {
  if (!r || !out)
    return invalid("kiln_reference_session_create: reference and out must not be null");
  if (threads < 0)
    return invalid("kiln_reference_session_create: threads must be >= 0");
  return guarded([&] {
    auto s = std::make_unique<kiln_reference_session>(*r->model.module);
    s->logits.assign(size_t(r->vocab), 0.0f);
    s->ref.interpreter().setThreads(threads ? unsigned(threads) : std::max(1u, std::thread::hardware_concurrency()));
    if (!r->adapter.empty())
      s->ref.interpreter().setAdapter(r->adapter);
    *out = s.release();
  });
}

void kiln_reference_session_destroy(kiln_reference_session *s) { delete s; }

namespace {
void checkIds(const kiln_reference_session *s, const int32_t *ids, size_t count) {
  int64_t vocab = s->ref.vocabSize();
  for (size_t i = 0; i < count; ++i)
    if (ids[i] < 0 || ids[i] >= vocab)
      throw kiln::Error("token id " + std::to_string(ids[i]) + " is outside the model's vocabulary of " +
                        std::to_string(vocab));
}
void store(kiln_reference_session *s, const std::vector<float> &logits) {
  std::copy(logits.begin(), logits.end(), s->logits.begin());
  s->haveLogits = true;
}
} // namespace

kiln_status
kiln_reference_session_prefill(kiln_reference_session *s, const int32_t *ids, size_t count, const float **logits) {
  if (!s || (!ids && count))
    return invalid("kiln_reference_session_prefill: session and ids must not be null");
  return guarded([&] {
    checkIds(s, ids, count);
    store(s, s->ref.prefill(std::vector<int32_t>(ids, ids + count)));
    if (logits)
      *logits = s->logits.data();
  });
}

kiln_status kiln_reference_session_decode(kiln_reference_session *s,
                                                                                 int32_t id, const float **logits) {
  if (!s)
    return invalid("kiln_reference_session_decode: session must not be null");
  return guarded([&] {
    checkIds(s, &id, 1);
    store(s, s->ref.decode(id));
    if (logits)
      *logits = s->logits.data();
  });
}

kiln_status kiln_reference_session_reset(kiln_reference_session *s) {
  if (!s)
    return invalid("kiln_reference_session_reset: session must not be null");
  return guarded([&] {
    s->ref.reset();
    s->haveLogits = false;
    s->sampler.reset();
  });
}

int64_t kiln_reference_session_position(const kiln_reference_session *s) {
  return s ? s->ref.position() : 0;
}

kiln_status
kiln_reference_session_sample(kiln_reference_session *s, const kiln_sampling *sampling, int32_t *out_id) {
  if (!s || !out_id)
    return invalid("kiln_reference_session_sample: session and out_id must not be null");
  return guarded([&] {
    if (!s->haveLogits)
      throw kiln::Error("sample: no logits yet (prefill first)");
    kiln::SamplingOptions o;
    if (sampling)
      o.temperature = sampling->temperature, o.topK = sampling->top_k, o.topP = sampling->top_p,
      o.seed = sampling->seed;
    // One generator per option set, as the runtime's session keeps, so a seed gives the same stream.
    if (!s->sampler || o.temperature != s->samplerOptions.temperature || o.topK != s->samplerOptions.topK ||
        o.topP != s->samplerOptions.topP || o.seed != s->samplerOptions.seed) {
      s->sampler = std::make_unique<kiln::Sampler>(o);
      s->samplerOptions = o;
    }
    *out_id = s->sampler->sample(s->logits.data(), s->logits.size());
  });
}

} // extern "C"
