//===- Protocol.cpp - the OpenAI-style request and error shapes -----------===//
#include "Protocol.h"

#include <algorithm>
#include <cmath>

namespace kiln::serve {

using json = nlohmann::json;

json errorBody(int status, const std::string &type, const std::string &message, const json &extra) {
  json e = {{"code", status}, {"message", message}, {"type", type}};
  for (auto it = extra.begin(); it != extra.end(); ++it)
    e[it.key()] = it.value();
  return {{"error", e}};
}

std::string dump(const json &j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

json parseBody(const std::string &body) {
  json j;
  try {
    j = json::parse(body);
  } catch (const json::exception &e) { // parse_error, and out_of_range for a number like 1e3081
    throw ClientError(400, "invalid_request_error", std::string("the request body is not valid JSON: ") + e.what());
  }
  if (!j.is_object())
    throw ClientError(400, "invalid_request_error", "the request body must be a JSON object");
  return j;
}

namespace {
[[noreturn]] void bad(const std::string &message) { throw ClientError(400, "invalid_request_error", message); }

std::string typeName(const json &v) { return v.type_name(); }

/// An optional field: absent or null gives `fallback`.
const json *field(const json &body, const char *name) {
  auto it = body.find(name);
  return it == body.end() || it->is_null() ? nullptr : &*it;
}

int64_t integer(const json &body, const char *name, int64_t fallback, int64_t lo, int64_t hi) {
  const json *v = field(body, name);
  if (!v)
    return fallback;
  if (!v->is_number_integer() && !(v->is_number_float() && std::floor(v->get<double>()) == v->get<double>()))
    bad("'" + std::string(name) + "' must be an integer, got " + typeName(*v));
  if (v->is_number_unsigned() && v->get<uint64_t>() > uint64_t(INT64_MAX))
    bad("'" + std::string(name) + "' must be in " + std::to_string(lo) + ".." + std::to_string(hi));
  double d = v->get<double>();
  if (d < double(lo) || d > double(hi))
    bad("'" + std::string(name) + "' must be in " + std::to_string(lo) + ".." + std::to_string(hi) + ", got " +
        v->dump());
  return v->is_number_integer() ? v->get<int64_t>() : int64_t(d);
}

double number(const json &body, const char *name, double fallback, double lo, double hi, bool openLow = false) {
  const json *v = field(body, name);
  if (!v)
    return fallback;
  if (!v->is_number())
    bad("'" + std::string(name) + "' must be a number, got " + typeName(*v));
  double d = v->get<double>();
  if (!std::isfinite(d) || d < lo || d > hi || (openLow && d == lo))
    bad("'" + std::string(name) + "' must be in " + (openLow ? "(" : "[") + json(lo).dump() + ", " + json(hi).dump() +
        "], got " + v->dump());
  return d;
}

bool boolean(const json &body, const char *name, bool fallback) {
  const json *v = field(body, name);
  if (!v)
    return fallback;
  if (!v->is_boolean())
    bad("'" + std::string(name) + "' must be true or false, got " + typeName(*v));
  return v->get<bool>();
}
} // namespace

std::vector<int32_t> tokenIds(const json &array, const std::string &name, int64_t vocab) {
  if (!array.is_array())
    bad("'" + name + "' must be an array of token ids, got " + typeName(array));
  std::vector<int32_t> ids;
  for (const auto &id : array) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= vocab)
      bad("'" + name + "' token ids must be integers in 0.." + std::to_string(vocab - 1) + ", got " + id.dump());
    ids.push_back(id.get<int32_t>());
  }
  return ids;
}

CompletionRequest parseCompletion(const json &body, const rt::Artifact &artifact, const Tokenizer &tokenizer,
                                  uint64_t defaultSeed, const std::string &modelId) {
  CompletionRequest c;
  // `model`: the served model (or absent), or one of its switchable adapters by name.
  if (const json *model = field(body, "model")) {
    if (!model->is_string())
      bad("'model' must be a string, got " + typeName(*model));
    std::string name = model->get<std::string>();
    std::vector<std::string> adapters = artifact.adapters();
    if (std::find(adapters.begin(), adapters.end(), name) != adapters.end()) {
      c.params.adapter = name;
    } else if (name != modelId) {
      std::string known = modelId;
      for (const auto &a : adapters)
        known += ", " + a;
      throw ClientError(404, "not_found_error", "no model '" + name + "' (this server has: " + known + ")");
    }
  }
  const int64_t ctx = artifact.contextLength(), vocab = artifact.vocabSize();
  const json *prompt = field(body, "prompt");
  if (!prompt)
    bad("'prompt' is required (a string or an array of token ids)");
  if (prompt->is_array() && prompt->size() == 1 && (*prompt)[0].is_string())
    prompt = &(*prompt)[0]; // ["text"]: one prompt
  if (prompt->is_string()) {
    c.promptText = prompt->get<std::string>();
    c.prompt = tokenizer.encode(c.promptText);
  } else if (prompt->is_array()) {
    for (const auto &id : *prompt)
      if (id.is_string())
        bad("'prompt' holds one prompt per request (a string or an array of token ids), not several strings");
    c.prompt = tokenIds(*prompt, "prompt", vocab);
    c.promptText = tokenizer.decode(c.prompt);
  } else {
    bad("'prompt' must be a string or an array of token ids, got " + typeName(*prompt));
  }
  if (c.prompt.empty())
    bad("'prompt' is empty (it must have at least one token)");
  if (int64_t(c.prompt.size()) > ctx)
    throw ClientError(400, "exceed_context_size_error",
                      "the prompt (" + std::to_string(c.prompt.size()) +
                          " tokens) exceeds the available context size (" + std::to_string(ctx) + " tokens)",
                      {{"n_prompt_tokens", c.prompt.size()}, {"n_ctx", ctx}});
  GenerationParams &p = c.params;
  p.maxTokens = integer(body, "max_tokens", 16, 1, ctx);
  p.sampling.temperature = number(body, "temperature", 1.0, 0.0, 100.0);
  p.sampling.topK = int(integer(body, "top_k", 0, 0, vocab));
  p.sampling.topP = number(body, "top_p", 1.0, 0.0, 1.0, true);
  p.sampling.seed = uint64_t(integer(body, "seed", int64_t(defaultSeed & 0x7fffffffffffffffull), 0, INT64_MAX));
  p.ignoreEos = boolean(body, "ignore_eos", false);
  if (const json *stop = field(body, "stop")) {
    std::vector<json> list = stop->is_array() ? stop->get<std::vector<json>>() : std::vector<json>{*stop};
    if (list.size() > 16)
      bad("'stop' takes at most 16 strings");
    for (const auto &s : list) {
      if (!s.is_string() || s.get<std::string>().empty() || s.get<std::string>().size() > 256)
        bad("'stop' must be a string or an array of non-empty strings of at most 256 bytes");
      p.stop.push_back(s.get<std::string>());
    }
  }
  c.stream = boolean(body, "stream", false);
  c.echo = boolean(body, "echo", false);
  if (const json *so = field(body, "stream_options")) {
    if (!so->is_object())
      bad("'stream_options' must be an object");
    c.includeUsage = boolean(*so, "include_usage", false);
  }
  if (integer(body, "n", 1, 1, 1) != 1 || integer(body, "best_of", 1, 1, 1) != 1)
    bad("'n' and 'best_of' must be 1");
  if (const json *lp = field(body, "logprobs"); lp && !(lp->is_number_integer() && lp->get<int64_t>() == 0) &&
                                                !(lp->is_boolean() && !lp->get<bool>()))
    throw ClientError(400, "invalid_request_error", "'logprobs' is not supported by kiln serve");
  if (field(body, "suffix"))
    bad("'suffix' is not supported (GPT-2 has no insertion mode)");
  return c;
}

} // namespace kiln::serve
