//===- Generate.cpp - the generation loop shared by both engines ----------===//
#include "Generate.h"

#include "kiln/Support/Error.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>

namespace kiln {

const std::set<std::string> kRunValuedOptions = {"--reference", "--prompt", "--prompt-ids", "-n", "--temperature",
                                                 "--top-k", "--top-p", "--seed", "--prompt-len", "--ctx-len",
                                                 "--threads", "--top-logits", "--kernels", "--device",
                                                 "--adapter"};
const std::set<std::string> kRunFlagOptions = {"--print-ids", "--json", "--stats", "--help"};

const char *const kRunHelp =
    "usage: kiln run ARTIFACT_DIR (--prompt TEXT | --prompt-ids 1,2,3) [-n N] [--kernels NAME] [--device N]\n"
    "                [--adapter NAME]\n"
    "       kiln run --reference MODEL_DIR|FILE.mlir (--prompt TEXT | --prompt-ids 1,2,3) [-n N]\n"
    "                [--prompt-len N] [--ctx-len N] [--adapter PEFT_DIR]\n"
    "  common: [--temperature T] [--top-k K] [--top-p P] [--seed S] [--print-ids]\n"
    "          [--json [--top-logits K]] [--stats] [--threads N]\n"
    "Generates text with a compiled artifact, or with --reference the reference interpreter\n"
    "(f64, exact, slow). Greedy by default; --temperature > 0 samples. --print-ids prints the\n"
    "generated ids as one line instead of text; --json prints {prompt_ids, ids, top_logits},\n"
    "where --top-logits K adds the K largest [id, logit] pairs of every step. --stats prints\n"
    "time to first token and tokens/s to stderr. --kernels forces a kernel variant\n"
    "(generic, avx2, avx512) of a cpu artifact; --device picks the GPU of a vulkan artifact\n"
    "(an index among the Vulkan devices, default 0). --adapter selects one of an artifact's\n"
    "switchable adapters by name (none: the base model), or with --reference merges a PEFT\n"
    "LoRA folder into the model's weights.\n";

namespace {
/// The k largest [id, logit] pairs, descending (ties: lower id first).
nlohmann::json topK(const std::vector<float> &logits, size_t k) {
  std::vector<int32_t> order(logits.size());
  for (size_t i = 0; i < order.size(); ++i)
    order[i] = int32_t(i);
  k = std::min(k, order.size());
  std::partial_sort(order.begin(), order.begin() + long(k), order.end(), [&](int32_t a, int32_t b) {
    return logits[size_t(a)] > logits[size_t(b)] || (logits[size_t(a)] == logits[size_t(b)] && a < b);
  });
  nlohmann::json out = nlohmann::json::array();
  for (size_t i = 0; i < k; ++i)
    out.push_back({order[i], logits[size_t(order[i])]});
  return out;
}

double seconds(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}
} // namespace

RunSettings parseRunSettings(const Args &args) {
  RunSettings s;
  if (args.has("--prompt") == args.has("--prompt-ids"))
    args.error("give exactly one of --prompt TEXT and --prompt-ids IDS");
  s.newTokens = args.getInt("-n", 32);
  if (s.newTokens < 0)
    args.error("-n must be >= 0");
  s.sampling.temperature = args.getDouble("--temperature", 0.0);
  s.sampling.topK = int(args.getInt("--top-k", 0));
  s.sampling.topP = args.getDouble("--top-p", 1.0);
  s.sampling.seed = uint64_t(args.getInt("--seed", 0));
  Sampler check(s.sampling); // validates the options up front
  s.json = args.has("--json");
  s.printIds = args.has("--print-ids") || s.json;
  s.stats = args.has("--stats");
  s.topLogits = args.getInt("--top-logits", 0);
  if (s.topLogits < 0)
    args.error("--top-logits must be >= 0");
  s.threads = args.getInt("--threads", 0);
  if (s.threads < 0)
    args.error("--threads must be >= 0");
  return s;
}

int generate(const Args &args, const RunSettings &settings, Engine &engine, const std::vector<int32_t> &prompt,
             const Tokenizer *tokenizer) {
  if (prompt.empty())
    args.error("the prompt is empty");
  if (int64_t(prompt.size()) > engine.contextLen)
    args.error("the prompt has " + std::to_string(prompt.size()) + " tokens but the context holds " +
               std::to_string(engine.contextLen));
  for (int32_t id : prompt)
    if (id >= engine.vocabSize)
      args.error("prompt token id " + std::to_string(id) + " is outside the model's vocabulary of " +
                 std::to_string(engine.vocabSize));
  Sampler sampler(settings.sampling);
  std::unique_ptr<TextStreamer> streamer;
  if (!settings.printIds) {
    streamer = std::make_unique<TextStreamer>(*tokenizer);
    std::cout << tokenizer->decode(prompt) << std::flush;
  }
  auto t0 = std::chrono::steady_clock::now();
  // Greedy without --top-logits needs no logits on the host where the engine picks the id.
  bool engineGreedy = engine.greedy && settings.sampling.temperature == 0.0 && settings.topLogits == 0;
  engine.prefill(prompt);
  auto tFirst = std::chrono::steady_clock::now();
  std::vector<int32_t> generated;
  nlohmann::json topPerStep = nlohmann::json::array();
  for (int64_t i = 0; i < settings.newTokens; ++i) {
    int32_t next;
    if (engineGreedy) {
      next = engine.greedy();
    } else {
      std::vector<float> logits = engine.logits();
      if (settings.topLogits > 0)
        topPerStep.push_back(topK(logits, size_t(settings.topLogits)));
      next = sampler.sample(logits.data(), logits.size());
    }
    generated.push_back(next);
    if (streamer)
      std::cout << streamer->push(next) << std::flush;
    if (i + 1 == settings.newTokens)
      break;
    if (engine.position() >= engine.contextLen) {
      std::cerr << "\nkiln run: stopped after " << generated.size() << " tokens: the context of "
                << engine.contextLen << " is full\n";
      break;
    }
    engine.decode(next);
  }
  auto tEnd = std::chrono::steady_clock::now();
  if (streamer)
    std::cout << streamer->flush() << std::endl;
  if (settings.json) {
    nlohmann::json out;
    out["prompt_ids"] = prompt;
    out["ids"] = generated;
    if (settings.topLogits > 0)
      out["top_logits"] = topPerStep;
    std::cout << out.dump() << "\n";
  } else if (settings.printIds) {
    for (size_t i = 0; i < generated.size(); ++i)
      std::cout << (i ? " " : "") << generated[i];
    std::cout << "\n";
  }
  if (settings.stats) {
    double ttft = seconds(t0, tFirst), decodeTime = seconds(tFirst, tEnd);
    size_t decoded = generated.size() > 1 ? generated.size() - 1 : 0;
    std::fprintf(stderr, "time to first token: %.3f s\nprefill: %zu tokens, %.1f tokens/s\n", ttft, prompt.size(),
                 double(prompt.size()) / ttft);
    std::fprintf(stderr, "decode: %zu tokens, %.1f tokens/s\n", decoded,
                 decoded ? double(decoded) / decodeTime : 0.0);
  }
  return 0;
}

} // namespace kiln
