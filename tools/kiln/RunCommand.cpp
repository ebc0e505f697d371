//===- RunCommand.cpp - kiln run ------------------------------------------===//
#include "Args.h"
#include "Commands.h"

#include "kiln/Interpreter/Interpreter.h"
#include "kiln/Runtime/Runtime.h"
#include "kiln/Runtime/Sampler.h"
#include "kiln/Runtime/Tokenizer.h"
#include "kiln/Support/Error.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <iostream>

namespace kiln {

namespace {
const char *kRunHelp =
    "usage: kiln run ARTIFACT_DIR (--prompt TEXT | --prompt-ids 1,2,3) [-n N] [--kernels NAME]\n"
    "       kiln run --reference MODEL_DIR|FILE.mlir (--prompt TEXT | --prompt-ids 1,2,3) [-n N]\n"
    "                [--prompt-len N] [--ctx-len N]\n"
    "  common: [--temperature T] [--top-k K] [--top-p P] [--seed S] [--print-ids]\n"
    "          [--json [--top-logits K]] [--stats] [--threads N]\n"
    "Generates text with a compiled artifact, or with --reference the reference interpreter\n"
    "(f64, exact, slow). Greedy by default; --temperature > 0 samples. --print-ids prints the\n"
    "generated ids as one line instead of text; --json prints {prompt_ids, ids, top_logits},\n"
    "where --top-logits K adds the K largest [id, logit] pairs of every step. --stats prints\n"
    "time to first token and tokens/s to stderr. --kernels forces a kernel variant\n"
    "(generic, avx2, avx512).\n";

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

/// What the generation loop needs from an engine (artifact or reference).
struct Engine {
  std::function<std::vector<float>(const std::vector<int32_t> &)> prefill;
  std::function<std::vector<float>(int32_t)> decode;
  std::function<int64_t()> position;
  int64_t contextLen = 0, vocabSize = 0;
};
} // namespace

int runCommand(int argc, char **argv) {
  Args args("run",
            {"--reference", "--prompt", "--prompt-ids", "-n", "--temperature", "--top-k", "--top-p", "--seed",
             "--prompt-len", "--ctx-len", "--threads", "--top-logits", "--kernels"},
            {"--print-ids", "--json", "--stats", "--help"});
  args.parse(argc, argv, 2);
  if (args.has("--help")) {
    std::cout << kRunHelp;
    return 0;
  }
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
  int64_t threads = args.getInt("--threads", 0);
  if (threads < 0)
    args.error("--threads must be >= 0");

  Engine engine;
  std::unique_ptr<Tokenizer> tokenizer;
  std::vector<int32_t> prompt;
  if (args.has("--prompt-ids"))
    prompt = parseIdList(args.get("--prompt-ids"));
  LoadedModel model;
  std::unique_ptr<ReferenceModel> ref;
  std::unique_ptr<rt::Artifact> artifact;
  std::unique_ptr<rt::Session> session;

  if (!args.has("--reference")) {
    if (args.positional().empty())
      args.error("missing ARTIFACT_DIR (or --reference MODEL_DIR)");
    for (const char *opt : {"--prompt-len", "--ctx-len"})
      if (args.has(opt))
        args.error(std::string(opt) + " is fixed when the artifact is compiled (see kiln compile)");
    rt::Artifact::Options open;
    open.kernels = args.get("--kernels", "auto");
    artifact = rt::Artifact::open(args.onePositional("ARTIFACT_DIR"), open);
    session = std::make_unique<rt::Session>(*artifact, int(threads));
    if (args.has("--prompt") || !printIds)
      tokenizer = Tokenizer::fromDir(artifact->dir());
    if (args.has("--prompt"))
      prompt = tokenizer->encode(args.get("--prompt"));
    engine.contextLen = artifact->contextLength();
    engine.vocabSize = artifact->vocabSize();
    int64_t vocab = engine.vocabSize;
    engine.prefill = [&session, vocab](const std::vector<int32_t> &ids) {
      const float *l = session->prefill(ids.data(), ids.size());
      return std::vector<float>(l, l + vocab);
    };
    engine.decode = [&session, vocab](int32_t id) {
      const float *l = session->decode(id);
      return std::vector<float>(l, l + vocab);
    };
    engine.position = [&session] { return session->position(); };
  } else {
    if (!args.positional().empty())
      args.error("unexpected argument '" + args.positional()[0] + "' (--reference names the model)");
    if (args.has("--kernels"))
      args.error("--kernels applies to compiled artifacts, not to --reference");
    std::string path = args.get("--reference");
    ImportOptions options;
    options.ctxLen = args.getInt("--ctx-len", 0);
    options.promptLen = args.getInt("--prompt-len", 0);
    bool isDir = std::filesystem::is_directory(path);
    if (!isDir)
      model = loadModel(path, options); // a .mlir file: its shapes are fixed
    std::string dir = isDir ? path : model.checkpointDir;
    if (args.has("--prompt") || !printIds)
      tokenizer = Tokenizer::fromDir(dir);
    if (args.has("--prompt"))
      prompt = tokenizer->encode(args.get("--prompt"));
    if (!model.module) {
      // The reference prefill defaults to exactly the prompt's length: no padding work.
      if (options.promptLen <= 0) {
        auto ckpt = Checkpoint::open(path);
        int64_t ctx = options.ctxLen ? options.ctxLen : ckpt->config().nPositions;
        options.promptLen = std::max<int64_t>(1, std::min<int64_t>(int64_t(prompt.size()), ctx));
      }
      model = loadModel(path, options);
    }
    ref = std::make_unique<ReferenceModel>(*model.module);
    if (threads > 0)
      ref->interpreter().setThreads(unsigned(threads));
    engine.contextLen = ref->contextLen();
    engine.vocabSize = ref->vocabSize();
    engine.prefill = [&ref](const std::vector<int32_t> &ids) { return ref->prefill(ids); };
    engine.decode = [&ref](int32_t id) { return ref->decode(id); };
    engine.position = [&ref] { return ref->position(); };
  }
  if (prompt.empty())
    args.error("the prompt is empty");
  if (int64_t(prompt.size()) > engine.contextLen)
    args.error("the prompt has " + std::to_string(prompt.size()) + " tokens but the context holds " +
               std::to_string(engine.contextLen));
  for (int32_t id : prompt)
    if (id >= engine.vocabSize)
      args.error("prompt token id " + std::to_string(id) + " is outside the model's vocabulary of " +
                 std::to_string(engine.vocabSize));

  std::unique_ptr<TextStreamer> streamer;
  if (!printIds) {
    streamer = std::make_unique<TextStreamer>(*tokenizer);
    std::cout << tokenizer->decode(prompt) << std::flush;
  }
  auto t0 = std::chrono::steady_clock::now();
  std::vector<float> logits = engine.prefill(prompt);
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
    if (engine.position() >= engine.contextLen) {
      std::cerr << "\nkiln run: stopped after " << generated.size() << " tokens: the context of "
                << engine.contextLen << " is full\n";
      break;
    }
    logits = engine.decode(next);
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
