//===- RunCommand.cpp - kiln run ------------------------------------------===//
#include "Args.h"
#include "Commands.h"

#include "kiln/Interpreter/Interpreter.h"
#include "kiln/Runtime/Sampler.h"
#include "kiln/Runtime/Tokenizer.h"
#include "kiln/Support/Error.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <cstdio>
#include <iostream>

namespace kiln {

namespace {
const char *kRunHelp =
    "usage: kiln run --reference MODEL_DIR|FILE.mlir (--prompt TEXT | --prompt-ids 1,2,3) [-n N]\n"
    "                [--temperature T] [--top-k K] [--top-p P] [--seed S] [--print-ids] [--stats]\n"
    "                [--prompt-len N] [--ctx-len N] [--threads N]\n"
    "Generates text. --reference runs the reference interpreter (f64, exact, slow).\n"
    "Greedy by default; --temperature > 0 samples. --print-ids prints the generated ids\n"
    "as one line instead of text. --json prints one object {prompt_ids, ids, top_logits} instead,\n"
    "where --top-logits K adds the K largest [id, logit] pairs of every step.\n"
    "--stats prints time to first token and tokens/s to stderr.\n";

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

int runCommand(int argc, char **argv) {
  Args args("run",
            {"--reference", "--prompt", "--prompt-ids", "-n", "--temperature", "--top-k", "--top-p", "--seed",
             "--prompt-len", "--ctx-len", "--threads", "--top-logits"},
            {"--print-ids", "--json", "--stats", "--help"});
  args.parse(argc, argv, 2);
  if (args.has("--help")) {
    std::cout << kRunHelp;
    return 0;
  }
  if (!args.has("--reference"))
    args.error(args.positional().empty()
                   ? "missing --reference MODEL_DIR (compiled artifacts arrive with the cpu backend)"
                   : "running compiled artifacts needs the cpu backend, which this build does not have yet; "
                     "use --reference MODEL_DIR");
  if (!args.positional().empty())
    args.error("unexpected argument '" + args.positional()[0] + "'");
  if (args.has("--prompt") == args.has("--prompt-ids"))
    args.error("give exactly one of --prompt TEXT and --prompt-ids IDS");
  int64_t newTokens = args.getInt("-n", 32);
  if (newTokens < 0)
    args.error("-n must be >= 0");
  SamplingOptions sampling;
  sampling.temperature = args.getDouble("--temperature", 0.0);
  sampling.topK = int(args.getInt("--top-k", 0));
  sampling.topP = args.getDouble("--top-p", 1.0);
  sampling.seed = uint64_t(args.getInt("--seed", 0));
  Sampler sampler(sampling);
  bool json = args.has("--json");
  bool printIds = args.has("--print-ids") || json;
  int64_t topLogits = args.getInt("--top-logits", 0);
  if (topLogits < 0)
    args.error("--top-logits must be >= 0");

  std::string path = args.get("--reference");
  // The tokenizer comes from the model folder (or, for a .mlir file, the
  // checkpoint folder it references). Only needed for text in or out.
  std::unique_ptr<Tokenizer> tokenizer;
  auto needTokenizer = [&](const std::string &dir) {
    if (!tokenizer)
      tokenizer = Tokenizer::fromDir(dir);
    return tokenizer.get();
  };

  ImportOptions options;
  options.ctxLen = args.getInt("--ctx-len", 0);
  options.promptLen = args.getInt("--prompt-len", 0);
  std::vector<int32_t> prompt;
  LoadedModel model;
  if (args.has("--prompt-ids")) {
    prompt = parseIdList(args.get("--prompt-ids"));
    if (options.promptLen == 0)
      options.promptLen = -int64_t(prompt.size()); // resolved below, once ctx is known
  }
  if (args.has("--prompt")) {
    // Tokenize before importing so the prefill can be sized to the prompt.
    std::string dir = path;
    if (!std::filesystem::is_directory(path)) {
      model = loadModel(path, options);
      dir = model.checkpointDir;
    }
    prompt = needTokenizer(dir)->encode(args.get("--prompt"));
  }
  if (prompt.empty())
    args.error("the prompt is empty");
  if (!model.module) {
    // The reference prefill defaults to exactly the prompt's length: no padding work.
    if (options.promptLen <= 0 && std::filesystem::is_directory(path)) {
      auto ckpt = Checkpoint::open(path);
      int64_t ctx = options.ctxLen ? options.ctxLen : ckpt->config().nPositions;
      options.promptLen = std::max<int64_t>(1, std::min<int64_t>(int64_t(prompt.size()), ctx));
    }
    model = loadModel(path, options);
  }
  ReferenceModel ref(*model.module);
  if (args.has("--threads"))
    ref.interpreter().setThreads(unsigned(std::max<int64_t>(1, args.getInt("--threads", 1))));
  if (int64_t(prompt.size()) > ref.contextLen())
    args.error("the prompt has " + std::to_string(prompt.size()) + " tokens but the context holds " +
               std::to_string(ref.contextLen()));
  for (int32_t id : prompt)
    if (id >= ref.vocabSize())
      args.error("prompt token id " + std::to_string(id) + " is outside the model's vocabulary of " +
                 std::to_string(ref.vocabSize()));

  std::unique_ptr<TextStreamer> streamer;
  if (!printIds) {
    streamer = std::make_unique<TextStreamer>(*needTokenizer(model.checkpointDir));
    std::cout << tokenizer->decode(prompt) << std::flush;
  }
  auto t0 = std::chrono::steady_clock::now();
  std::vector<float> logits = ref.prefill(prompt);
  auto tFirst = std::chrono::steady_clock::now();
  std::vector<int32_t> generated;
  nlohmann::json topPerStep = nlohmann::json::array();
  for (int64_t i = 0; i < newTokens; ++i) {
    if (topLogits > 0)
      topPerStep.push_back(topK(logits, size_t(topLogits)));
    int32_t next = sampler.sample(logits.data(), logits.size());
    generated.push_back(next);
    if (streamer)
      std::cout << streamer->push(next) << std::flush;
    if (i + 1 == newTokens)
      break;
    if (ref.position() >= ref.contextLen()) {
      std::cerr << "\nkiln run: stopped after " << generated.size() << " tokens: the context of "
                << ref.contextLen() << " is full\n";
      break;
    }
    logits = ref.decode(next);
  }
  auto tEnd = std::chrono::steady_clock::now();
  if (streamer)
    std::cout << streamer->flush() << std::endl;
  if (json) {
    nlohmann::json out;
    out["prompt_ids"] = prompt;
    out["ids"] = generated;
    if (topLogits > 0)
      out["top_logits"] = topPerStep;
    std::cout << out.dump() << "\n";
  } else if (printIds) {
    for (size_t i = 0; i < generated.size(); ++i)
      std::cout << (i ? " " : "") << generated[i];
    std::cout << "\n";
  }
  if (args.has("--stats")) {
    double ttft = seconds(t0, tFirst), decode = seconds(tFirst, tEnd);
    size_t decoded = generated.size() > 1 ? generated.size() - 1 : 0;
    std::fprintf(stderr, "time to first token: %.3f s\nprefill: %zu tokens, %.1f tokens/s\n", ttft, prompt.size(),
                 double(prompt.size()) / ttft);
    std::fprintf(stderr, "decode: %zu tokens, %.1f tokens/s\n", decoded, decoded ? double(decoded) / decode : 0.0);
  }
  return 0;
}

} // namespace kiln
