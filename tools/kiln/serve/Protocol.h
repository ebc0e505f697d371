//===- Protocol.h - the OpenAI-style request and error shapes -------------===//
//
// Parsing and validating /v1/completions bodies, and the error object every
// route answers with: {"error": {"code", "message", "type"}} (llama.cpp's and
// OpenAI's shape). A ClientError carries the HTTP status and type.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_TOOLS_SERVE_PROTOCOL_H
#define KILN_TOOLS_SERVE_PROTOCOL_H

#include "Engine.h"

#include <nlohmann/json.hpp>

#include <stdexcept>
#include <string>

namespace kiln::serve {

struct ClientError : std::runtime_error {
  ClientError(int status, std::string type, const std::string &message, nlohmann::json extra = nlohmann::json::object())
      : std::runtime_error(message), status(status), type(std::move(type)), extra(std::move(extra)) {}
  int status;
  std::string type;
  nlohmann::json extra; ///< fields added to the error object (n_prompt_tokens, n_ctx)
};

/// {"error": {...}} for a status, type and message.
nlohmann::json errorBody(int status, const std::string &type, const std::string &message,
                         const nlohmann::json &extra = nlohmann::json::object());

/// JSON text that never throws on invalid UTF-8 (replaced by U+FFFD).
std::string dump(const nlohmann::json &j);

/// The body as a JSON object, or ClientError 400.
nlohmann::json parseBody(const std::string &body);

/// The token ids of a JSON array (`name` in the message), each in 0..vocab-1, or ClientError 400.
std::vector<int32_t> tokenIds(const nlohmann::json &array, const std::string &name, int64_t vocab);

struct CompletionRequest {
  GenerationParams params;
  std::vector<int32_t> prompt;
  std::string promptText; ///< for echo
  bool stream = false, echo = false, includeUsage = false;
};

/// Validates a /v1/completions body (types, ranges, the prompt against the context; `model`
/// names the served model, `modelId`, or one of its switchable adapters).
CompletionRequest parseCompletion(const nlohmann::json &body, const rt::Artifact &artifact, const Tokenizer &tokenizer,
                                  uint64_t defaultSeed, const std::string &modelId);

} // namespace kiln::serve

#endif
