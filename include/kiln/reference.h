/*===- kiln/reference.h - the reference interpreter as a C API (version 1.0) -===*
 *
 * In libkiln-compiler.so (it links MLIR), beside the runtime's kiln/runtime.h whose
 * kiln_status and kiln_sampling it uses. The reference interpreter runs a model's kiln
 * IR in double precision, exactly as `kiln run --reference` does: the oracle every
 * backend and pipeline is checked against. Slow by design.
 *
 *   kiln_reference *r;  kiln_reference_session *s;  const float *logits;
 *   kiln_status st = kiln_reference_open("models/kjv-gpt2-tiny", NULL, &r);
 *   st = kiln_reference_session_create(r, 0, &s);
 *   st = kiln_reference_session_prefill(s, ids, n, &logits);
 *   st = kiln_reference_session_decode(s, next, &logits);
 *   kiln_reference_session_destroy(s);  kiln_reference_close(r);
 *
 * A session is used by one thread at a time; the sessions of one model are
 * independent (each owns its KV cache). Logits stay valid until the next call on
 * the session. Every session must be destroyed before its model is closed.
 *===----------------------------------------------------------------------===*/
#ifndef KILN_REFERENCE_H
#define KILN_REFERENCE_H

#include "kiln/runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

#define KILN_REFERENCE_API_VERSION 1
#define KILN_REFERENCE_API_MINOR_VERSION 0

typedef struct kiln_reference kiln_reference;
typedef struct kiln_reference_session kiln_reference_session;

typedef struct kiln_reference_options {
  int64_t ctx_len;     /* KV-cache length; 0: the model's n_positions (a folder only) */
  int64_t prompt_len;  /* tokens per prefill chunk; 0: 16, clamped to the context (a folder only) */
  const char *adapter; /* a folder: a PEFT LoRA folder merged into the weights;
                        * a .mlir with switchable adapters: the one to run; NULL: none */
} kiln_reference_options;

/* `path`: a Hugging Face GPT-2 folder (imported) or a kiln IR file (a .mlir from
 * `kiln import` or `kiln compile --emit kiln`: its shapes and passes as they are). */
kiln_status kiln_reference_open(const char *path, const kiln_reference_options *options, kiln_reference **out);
void kiln_reference_close(kiln_reference *reference);
int64_t kiln_reference_vocab_size(const kiln_reference *reference);
int64_t kiln_reference_context_length(const kiln_reference *reference);
int64_t kiln_reference_prompt_length(const kiln_reference *reference);
int64_t kiln_reference_eos_token_id(const kiln_reference *reference); /* -1: none */
/* Where the checkpoint's tokenizer files are (for kiln_tokenizer_open). */
const char *kiln_reference_checkpoint_dir(const kiln_reference *reference);

/* threads: 0 for all cores. */
kiln_status kiln_reference_session_create(kiln_reference *reference, int32_t threads, kiln_reference_session **out);
void kiln_reference_session_destroy(kiln_reference_session *session);
kiln_status kiln_reference_session_prefill(kiln_reference_session *session, const int32_t *ids, size_t count,
                                           const float **logits);
kiln_status kiln_reference_session_decode(kiln_reference_session *session, int32_t id, const float **logits);
kiln_status kiln_reference_session_reset(kiln_reference_session *session); /* sampling restarts too */
int64_t kiln_reference_session_position(const kiln_reference_session *session);
/* The runtime's sampler (the same ids as kiln_session_sample for the same logits and options). */
kiln_status kiln_reference_session_sample(kiln_reference_session *session, const kiln_sampling *sampling,
                                          int32_t *out_id);

#ifdef __cplusplus
}
#endif

#endif
