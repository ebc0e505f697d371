/*===- kiln/runtime.h - the Kiln runtime C API (version 1.4) ---------------===*
 *
 * Runs compiled artifacts. Links no MLIR or LLVM. Every call that can fail
 * returns a kiln_status: NULL means success; otherwise it carries a message
 * (kiln_status_message) and must be freed with kiln_status_free.
 *
 *   kiln_artifact *a;  kiln_session *s;  const float *logits;
 *   kiln_status st = kiln_artifact_open("out/gpt2", NULL, &a);
 *   st = kiln_session_create(a, NULL, &s);
 *   st = kiln_session_prefill(s, ids, n, &logits);   // logits of the last token
 *   st = kiln_session_sample(s, &sampling, &next);   // or argmax yourself
 *   st = kiln_session_decode(s, next, &logits);
 *   kiln_session_destroy(s);  kiln_artifact_close(a);
 *
 * A session is used by one thread at a time; sessions of one artifact are
 * independent (each owns its KV cache). Logits pointers stay valid until the
 * next call on the session.
 *===----------------------------------------------------------------------===*/
#ifndef KILN_RUNTIME_H
#define KILN_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The major version changes only with incompatible changes; the minor one counts additions. */
#define KILN_RUNTIME_API_VERSION 1
#define KILN_RUNTIME_API_MINOR_VERSION 4

typedef struct kiln_status_t *kiln_status;
typedef struct kiln_artifact kiln_artifact;
typedef struct kiln_session kiln_session;

const char *kiln_status_message(kiln_status status);
void kiln_status_free(kiln_status status);

typedef struct kiln_open_options {
  /* Kernel variant to force: NULL or "auto" picks the best the CPU has;
   * "generic", "avx2", "avx512", "neon" force one (an error if unsupported). */
  const char *kernels;
  /* Skip the weights.bin checksum (checked by default). */
  int skip_weight_checksum;
} kiln_open_options;

kiln_status kiln_artifact_open(const char *dir, const kiln_open_options *options, kiln_artifact **out);
void kiln_artifact_close(kiln_artifact *artifact);

/* Facts about an open artifact. */
int64_t kiln_artifact_vocab_size(const kiln_artifact *artifact);
int64_t kiln_artifact_context_length(const kiln_artifact *artifact);
int64_t kiln_artifact_prompt_length(const kiln_artifact *artifact);
uint64_t kiln_artifact_weight_bytes(const kiln_artifact *artifact);
/* The kernel variant chosen at open ("avx512", ...; "vulkan" for a vulkan artifact). */
const char *kiln_artifact_kernels(const kiln_artifact *artifact);
/* The artifact's target ("cpu", "vulkan") and, for a GPU target, the device it opened
 * ("vulkan: NAME, driver DRIVER"; "" for cpu). A GPU artifact opens on device 0 of its API,
 * or on the index in the KILN_DEVICE environment variable. (Since C API 1.1.) */
const char *kiln_artifact_target(const kiln_artifact *artifact);
const char *kiln_artifact_device(const kiln_artifact *artifact);
/* The id that ends a text (config.json's eos_token_id; 50256 for GPT-2), -1 if the artifact
 * names none. Generation does not stop at it by itself: callers decide. (Since C API 1.4.) */
int64_t kiln_artifact_eos_token_id(const kiln_artifact *artifact);

typedef struct kiln_session_options {
  int32_t threads; /* 0: all cores */
} kiln_session_options;

kiln_status kiln_session_create(kiln_artifact *artifact, const kiln_session_options *options, kiln_session **out);
void kiln_session_destroy(kiln_session *session);
/* Appends tokens (prefilled in chunks of the artifact's prompt length) and
 * returns the vocab_size logits after the last one. */
kiln_status kiln_session_prefill(kiln_session *session, const int32_t *ids, size_t count, const float **logits);
/* Appends one token and returns the logits after it. */
kiln_status kiln_session_decode(kiln_session *session, int32_t id, const float **logits);
/* Forgets the sequence (position 0, cache cleared; sampling restarts from its seed). */
kiln_status kiln_session_reset(kiln_session *session);
int64_t kiln_session_position(const kiln_session *session);

typedef struct kiln_sampling {
  float temperature; /* 0: greedy */
  int32_t top_k;     /* 0: off */
  float top_p;       /* 1: off */
  uint64_t seed;
} kiln_sampling;
/* Switchable LoRA adapters (kiln compile --adapters NAME=DIR,...; docs/adapters.md). (Since C API 1.2.)
 * The artifact's adapters by index (0 .. count-1; NULL past the end). A session starts on the base
 * model ("none"); set_adapter(NULL or "none") returns to it. The choice applies to tokens fed after
 * it, without reloading anything; the KV cache keeps what earlier tokens computed, so reset the
 * session for a sequence wholly under the new adapter. An unknown name is an error. */
int64_t kiln_artifact_adapter_count(const kiln_artifact *artifact);
const char *kiln_artifact_adapter_name(const kiln_artifact *artifact, int64_t index);
kiln_status kiln_session_set_adapter(kiln_session *session, const char *name);
const char *kiln_session_adapter(const kiln_session *session);

/* Picks the next token from the session's latest logits. */
kiln_status kiln_session_sample(kiln_session *session, const kiln_sampling *sampling, int32_t *out_id);

/* Batched decode (kiln compile --decode-batch 1,2,4,8; since C API 1.3). A batch holds
 * `slots` sequences on one thread pool. Each slot is a session owned by the batch
 * (kiln_batch_slot; kiln_session_destroy ignores it): prefill, sample, reset and
 * set_adapter work on it as on any session, and run on the batch's threads.
 * kiln_batch_decode feeds ids[i] to slot slots[i] (distinct slots), all in one call
 * of the artifact's smallest decode specialization that holds them (padded; several
 * calls past the largest, one per adapter in use), which reads each weight once for
 * all of them. It returns count x vocab_size logits (row i for slots[i]), valid until
 * the next call on the batch; each slot's session has its row as its latest logits.
 * Contract: every row's logits are bit-identical to decoding that sequence alone
 * (kiln_session_decode), so greedy ids are the same in any batch. A bad slot, id or a
 * full context fails the whole call before anything runs. The batch and its slots are
 * used by one thread at a time. Without compiled batch sizes (or on a GPU target)
 * the step decodes the slots one after another: same results, no speed-up. */
typedef struct kiln_batch kiln_batch;
typedef struct kiln_batch_options {
  int32_t threads; /* 0: all cores */
  int32_t slots;   /* sequences; 0: 1 */
} kiln_batch_options;
/* The compiled decode batch sizes, ascending; index 0 is 1 (0 past the end). */
int64_t kiln_artifact_decode_batch_count(const kiln_artifact *artifact);
int64_t kiln_artifact_decode_batch_size(const kiln_artifact *artifact, int64_t index);
kiln_status kiln_batch_create(kiln_artifact *artifact, const kiln_batch_options *options, kiln_batch **out);
void kiln_batch_destroy(kiln_batch *batch);
int64_t kiln_batch_slot_count(const kiln_batch *batch);
kiln_session *kiln_batch_slot(kiln_batch *batch, int64_t slot); /* NULL past the last */
kiln_status kiln_batch_decode(kiln_batch *batch, const int32_t *slots, const int32_t *ids, size_t count,
                              const float **logits);

/* Tokenizer of the artifact (its vocab.json / merges.txt). */
kiln_status kiln_tokenize(kiln_artifact *artifact, const char *text, size_t length, int32_t **ids, size_t *count);
kiln_status kiln_detokenize(kiln_artifact *artifact, const int32_t *ids, size_t count, char **text, size_t *length);
/* A tokenizer without an artifact: the vocab.json / merges.txt of a Hugging Face folder or of
 * an artifact directory. Safe to use from several threads at once. (Since C API 1.4.) */
typedef struct kiln_tokenizer kiln_tokenizer;
kiln_status kiln_tokenizer_open(const char *dir, kiln_tokenizer **out);
void kiln_tokenizer_close(kiln_tokenizer *tokenizer);
int64_t kiln_tokenizer_vocab_size(const kiln_tokenizer *tokenizer);
kiln_status kiln_tokenizer_encode(const kiln_tokenizer *tokenizer, const char *text, size_t length, int32_t **ids,
                                  size_t *count);
/* The tokens' bytes, concatenated: the end may fall inside a UTF-8 sequence (an id out of
 * the vocabulary is an error). */
kiln_status kiln_tokenizer_decode(const kiln_tokenizer *tokenizer, const int32_t *ids, size_t count, char **text,
                                  size_t *length);

/* Frees arrays returned by kiln_tokenize / kiln_detokenize / kiln_tokenizer_encode / kiln_tokenizer_decode. */
void kiln_free(void *pointer);

#ifdef __cplusplus
}
#endif

#endif
