//===- CApi.cpp - kiln/runtime.h over the C++ runtime ---------------------===//
#include "kiln/runtime.h"

#include "kiln/Runtime/CApiSupport.h"

#include "kiln/Runtime/Runtime.h"
#include "kiln/Runtime/Tokenizer.h"
#include "kiln/Support/Error.h"

#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

struct kiln_artifact {
  std::unique_ptr<kiln::rt::Artifact> impl;
  std::vector<std::string> adapters; ///< stable storage for kiln_artifact_adapter_name
};
struct kiln_session {
  std::unique_ptr<kiln::rt::Session> owned; ///< null for a batch's slot (the batch owns it)
  kiln::rt::Session *impl = nullptr;
};
struct kiln_tokenizer {
  std::unique_ptr<kiln::Tokenizer> impl;
};
struct kiln_batch {
  std::unique_ptr<kiln::rt::Batch> impl;
  std::vector<kiln_session> slots;
};

using kiln::capi::guarded;
using kiln::capi::invalid;

extern "C" {

const char *kiln_status_message(kiln_status status) { return status ? status->message.c_str() : "ok"; }
void kiln_status_free(kiln_status status) { delete status; }

kiln_status kiln_artifact_open(const char *dir, const kiln_open_options *options, kiln_artifact **out) {
  if (!dir || !out)
    return invalid("kiln_artifact_open: dir and out must not be null");
  return guarded([&] {
    kiln::rt::Artifact::Options o;
    if (options && options->kernels)
      o.kernels = options->kernels;
    if (options)
      o.skipWeightChecksum = options->skip_weight_checksum != 0;
    if (const char *device = std::getenv("KILN_DEVICE")) {
      char *end = nullptr;
      long index = std::strtol(device, &end, 10);
      if (!*device || *end || index < 0 || index > 1024)
        throw kiln::Error(std::string("KILN_DEVICE='") + device + "' is not a device index");
      o.device = int(index);
    }
    auto a = std::make_unique<kiln_artifact>();
    a->impl = kiln::rt::Artifact::open(dir, o);
    a->adapters = a->impl->adapters();
    *out = a.release();
  });
}

void kiln_artifact_close(kiln_artifact *artifact) { delete artifact; }

int64_t kiln_artifact_vocab_size(const kiln_artifact *a) { return a ? a->impl->vocabSize() : 0; }
int64_t kiln_artifact_context_length(const kiln_artifact *a) { return a ? a->impl->contextLength() : 0; }
int64_t kiln_artifact_prompt_length(const kiln_artifact *a) { return a ? a->impl->promptLength() : 0; }
uint64_t kiln_artifact_weight_bytes(const kiln_artifact *a) { return a ? a->impl->weightBytes() : 0; }
const char *kiln_artifact_kernels(const kiln_artifact *a) { return a ? a->impl->kernels().c_str() : ""; }
const char *kiln_artifact_target(const kiln_artifact *a) { return a ? a->impl->target().c_str() : ""; }
const char *kiln_artifact_device(const kiln_artifact *a) { return a ? a->impl->device().c_str() : ""; }

kiln_status kiln_session_create(kiln_artifact *artifact, const kiln_session_options *options, kiln_session **out) {
  if (!artifact || !out)
    return invalid("kiln_session_create: artifact and out must not be null");
  return guarded([&] {
    auto s = std::make_unique<kiln_session>();
    s->owned = std::make_unique<kiln::rt::Session>(*artifact->impl, options ? options->threads : 0);
    s->impl = s->owned.get();
    *out = s.release();
  });
}

void kiln_session_destroy(kiln_session *session) {
  if (session && session->owned) // a batch's slot goes with its batch
    delete session;
}

int64_t kiln_artifact_decode_batch_count(const kiln_artifact *a) {
  return a ? int64_t(a->impl->decodeBatchSizes().size()) : 0;
}

int64_t kiln_artifact_decode_batch_size(const kiln_artifact *a, int64_t index) {
  if (!a)
    return 0;
  std::vector<int64_t> sizes = a->impl->decodeBatchSizes();
  return index >= 0 && index < int64_t(sizes.size()) ? sizes[size_t(index)] : 0;
}

kiln_status kiln_batch_create(kiln_artifact *artifact, const kiln_batch_options *options, kiln_batch **out) {
  if (!artifact || !out)
    return invalid("kiln_batch_create: artifact and out must not be null");
  return guarded([&] {
    auto b = std::make_unique<kiln_batch>();
    b->impl = std::make_unique<kiln::rt::Batch>(*artifact->impl, options ? options->threads : 0,
                                                options && options->slots ? options->slots : 1);
    b->slots.resize(size_t(b->impl->slots()));
    for (size_t i = 0; i < b->slots.size(); ++i)
      b->slots[i].impl = &b->impl->slot(int(i));
    *out = b.release();
  });
}

void kiln_batch_destroy(kiln_batch *batch) { delete batch; }

int64_t kiln_batch_slot_count(const kiln_batch *batch) { return batch ? int64_t(batch->slots.size()) : 0; }

kiln_session *kiln_batch_slot(kiln_batch *batch, int64_t slot) {
  return batch && slot >= 0 && slot < int64_t(batch->slots.size()) ? &batch->slots[size_t(slot)] : nullptr;
}

kiln_status kiln_batch_decode(kiln_batch *batch, const int32_t *slots, const int32_t *ids, size_t count,
                              const float **logits) {
  if (!batch || ((!slots || !ids) && count))
    return invalid("kiln_batch_decode: batch, slots and ids must not be null");
  return guarded([&] {
    const float *l = batch->impl->decode(slots, ids, count);
    if (logits)
      *logits = l;
  });
}

kiln_status kiln_session_prefill(kiln_session *session, const int32_t *ids, size_t count, const float **logits) {
  if (!session || (!ids && count))
    return invalid("kiln_session_prefill: session and ids must not be null");
  return guarded([&] {
    const float *l = session->impl->prefill(ids, count);
    if (logits)
      *logits = l;
  });
}

kiln_status kiln_session_decode(kiln_session *session, int32_t id, const float **logits) {
  if (!session)
    return invalid("kiln_session_decode: session must not be null");
  return guarded([&] {
    const float *l = session->impl->decode(id);
    if (logits)
      *logits = l;
  });
}

kiln_status kiln_session_reset(kiln_session *session) {
  if (!session)
    return invalid("kiln_session_reset: session must not be null");
  return guarded([&] { session->impl->reset(); });
}

int64_t kiln_session_position(const kiln_session *session) { return session ? session->impl->position() : 0; }

int64_t kiln_artifact_adapter_count(const kiln_artifact *a) { return a ? int64_t(a->adapters.size()) : 0; }

const char *kiln_artifact_adapter_name(const kiln_artifact *a, int64_t index) {
  return a && index >= 0 && index < int64_t(a->adapters.size()) ? a->adapters[size_t(index)].c_str() : nullptr;
}

kiln_status kiln_session_set_adapter(kiln_session *session, const char *name) {
  if (!session)
    return invalid("kiln_session_set_adapter: session must not be null");
  return guarded([&] { session->impl->setAdapter(name ? name : "none"); });
}

const char *kiln_session_adapter(const kiln_session *session) {
  return session ? session->impl->adapter().c_str() : "none";
}

kiln_status kiln_session_sample(kiln_session *session, const kiln_sampling *sampling, int32_t *out_id) {
  if (!session || !out_id)
    return invalid("kiln_session_sample: session and out_id must not be null");
  return guarded([&] {
    kiln::SamplingOptions o;
    if (sampling) {
      o.temperature = sampling->temperature;
      o.topK = sampling->top_k;
      o.topP = sampling->top_p;
      o.seed = sampling->seed;
    }
    *out_id = session->impl->sample(o);
  });
}

int64_t kiln_artifact_eos_token_id(const kiln_artifact *a) { return a ? a->impl->eosTokenId() : -1; }

namespace {
/// `v` in a malloc'ed array the caller frees with kiln_free.
int32_t *mallocIds(const std::vector<int32_t> &v) {
  auto *p = static_cast<int32_t *>(std::malloc(v.size() * sizeof(int32_t) + 1));
  if (!p)
    throw std::bad_alloc();
  if (!v.empty()) // an empty vector's data() may be null, which memcpy must not get
    std::memcpy(p, v.data(), v.size() * sizeof(int32_t));
  return p;
}
/// `s` NUL-terminated in a malloc'ed buffer the caller frees with kiln_free.
char *mallocText(const std::string &s) {
  auto *p = static_cast<char *>(std::malloc(s.size() + 1));
  if (!p)
    throw std::bad_alloc();
  std::memcpy(p, s.data(), s.size());
  p[s.size()] = '\0';
  return p;
}
} // namespace

kiln_status kiln_tokenize(kiln_artifact *artifact, const char *text, size_t length, int32_t **ids, size_t *count) {
  if (!artifact || (!text && length) || !ids || !count)
    return invalid("kiln_tokenize: null argument");
  return guarded([&] {
    std::vector<int32_t> v = artifact->impl->tokenizer().encode(std::string_view(text ? text : "", length));
    *ids = mallocIds(v);
    *count = v.size();
  });
}

kiln_status kiln_detokenize(kiln_artifact *artifact, const int32_t *ids, size_t count, char **text, size_t *length) {
  if (!artifact || (!ids && count) || !text || !length)
    return invalid("kiln_detokenize: null argument");
  return guarded([&] {
    std::string s = artifact->impl->tokenizer().decode(std::vector<int32_t>(ids, ids + count));
    *text = mallocText(s);
    *length = s.size();
  });
}

kiln_status kiln_tokenizer_open(const char *dir, kiln_tokenizer **out) {
  if (!dir || !out)
    return invalid("kiln_tokenizer_open: dir and out must not be null");
  return guarded([&] {
    auto t = std::make_unique<kiln_tokenizer>();
    t->impl = kiln::Tokenizer::fromDir(dir);
    *out = t.release();
  });
}

void kiln_tokenizer_close(kiln_tokenizer *tokenizer) { delete tokenizer; }

int64_t kiln_tokenizer_vocab_size(const kiln_tokenizer *t) { return t ? int64_t(t->impl->vocabSize()) : 0; }

kiln_status kiln_tokenizer_encode(const kiln_tokenizer *tokenizer, const char *text, size_t length, int32_t **ids,
                                  size_t *count) {
  if (!tokenizer || (!text && length) || !ids || !count)
    return invalid("kiln_tokenizer_encode: null argument");
  return guarded([&] {
    std::vector<int32_t> v = tokenizer->impl->encode(std::string_view(text ? text : "", length));
    *ids = mallocIds(v);
    *count = v.size();
  });
}

kiln_status kiln_tokenizer_decode(const kiln_tokenizer *tokenizer, const int32_t *ids, size_t count, char **text,
                                  size_t *length) {
  if (!tokenizer || (!ids && count) || !text || !length)
    return invalid("kiln_tokenizer_decode: null argument");
  return guarded([&] {
    std::string s = tokenizer->impl->decode(std::vector<int32_t>(ids, ids + count));
    *text = mallocText(s);
    *length = s.size();
  });
}

void kiln_free(void *pointer) { std::free(pointer); }

} // extern "C"
