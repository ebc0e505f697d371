//===- EvalCommand.cpp - kiln eval ----------------------------------------===//
//
// Perplexity over independent windows of W tokens (stride W), scoring tokens
// 1..W-1 of each window, over the first N tokens of a text file; with
// --against, also the KL divergence KL(teacher || model) and top-1 agreement
// at the same positions.
//
//===----------------------------------------------------------------------===//
#include "../Args.h"
#include "Commands.h"

#include "kiln/Interpreter/Interpreter.h"
#include "kiln/Runtime/Tokenizer.h"
#include "kiln/Support/Error.h"
#include "kiln/Support/File.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>

namespace kiln {

namespace {
/// log-softmax of one row, in double.
std::vector<double> logSoftmax(const std::vector<double> &logits) {
  double mx = -INFINITY, sum = 0;
  for (double v : logits)
    mx = std::max(mx, v);
  for (double v : logits)
    sum += std::exp(v - mx);
  double lse = mx + std::log(sum);
  std::vector<double> out(logits.size());
  for (size_t i = 0; i < logits.size(); ++i)
    out[i] = logits[i] - lse;
  return out;
}

size_t argmax(const std::vector<double> &v) {
  size_t best = 0;
  for (size_t i = 1; i < v.size(); ++i)
    if (v[i] > v[best])
      best = i;
  return best;
}
} // namespace

int evalCommand(int argc, char **argv) {
  Args args("eval", {"--text", "--window", "--max-tokens", "--against", "--threads", "--pipeline", "--passes",
                     "--load-pass-plugin", "--calibration"},
            {"--json", "--help"});
  args.parse(argc, argv, 2);
  if (args.has("--help")) {
    std::cout << "usage: kiln eval MODEL_DIR|FILE.mlir --text FILE [--window W] [--max-tokens N]\n"
                 "                 [--against TEACHER_DIR|FILE.mlir] [--pipeline FILE.yaml | --passes LIST]\n"
                 "                 [--load-pass-plugin PATH] [--calibration FILE] [--json]\n"
                 "The pipeline (if any) is applied to the model, not to the teacher.\n"
                 "Perplexity over independent windows of W tokens (default: the context length),\n"
                 "scoring tokens 1..W-1 of each; with --against, KL(teacher || model) and top-1 agreement.\n";
    return 0;
  }
  std::string path = args.onePositional("MODEL_DIR");
  if (!args.has("--text"))
    args.error("missing --text FILE");
  std::string textPath = args.get("--text");
  std::string text = readFile(textPath, "cannot open text file");

  ImportOptions options;
  options.allLogits = true;
  int64_t window = args.getInt("--window", 0);
  if (window < 0 || window == 1)
    args.error("--window must be at least 2");
  if (window == 0 && std::filesystem::is_directory(path))
    window = Checkpoint::open(path)->config().nPositions;
  options.promptLen = options.ctxLen = window;
  LoadedModel model = loadModel(path, options);
  applyUserPipeline(args, *model.module);
  ReferenceModel ref(*model.module);
  std::optional<LoadedModel> teacherModel;
  std::unique_ptr<ReferenceModel> teacher;
  if (args.has("--against")) {
    teacherModel = loadModel(args.get("--against"), options);
    teacher = std::make_unique<ReferenceModel>(*teacherModel->module);
  }
  if (args.has("--threads")) {
    ref.interpreter().setThreads(unsigned(std::max<int64_t>(1, args.getInt("--threads", 1))));
    if (teacher)
      teacher->interpreter().setThreads(unsigned(std::max<int64_t>(1, args.getInt("--threads", 1))));
  }
  window = ref.promptLen();

  auto tokenizer = Tokenizer::fromDir(model.checkpointDir);
  std::vector<int32_t> tokens = tokenizer->encode(text);
  int64_t maxTokens = args.getInt("--max-tokens", int64_t(tokens.size()));
  if (maxTokens < 2)
    args.error("--max-tokens must be at least 2");
  if (int64_t(tokens.size()) > maxTokens)
    tokens.resize(size_t(maxTokens));
  for (int32_t id : tokens)
    if (id >= ref.vocabSize())
      fail(textPath, "token id " + std::to_string(id) + " is outside the model's vocabulary of " +
                         std::to_string(ref.vocabSize()));

  double nll = 0, kl = 0;
  size_t scored = 0, agree = 0;
  for (size_t begin = 0; begin + 1 < tokens.size(); begin += size_t(window)) {
    size_t end = std::min(tokens.size(), begin + size_t(window));
    std::vector<int32_t> ids(tokens.begin() + long(begin), tokens.begin() + long(end));
    auto rows = ref.scoreAll(ids);
    std::vector<std::vector<double>> teacherRows;
    if (teacher)
      teacherRows = teacher->scoreAll(ids);
    for (size_t t = 1; t < ids.size(); ++t) {
      std::vector<double> logp = logSoftmax(rows[t - 1]);
      nll -= logp[size_t(ids[t])];
      if (teacher) {
        std::vector<double> logq = logSoftmax(teacherRows[t - 1]);
        double k = 0;
        for (size_t v = 0; v < logq.size(); ++v)
          k += std::exp(logq[v]) * (logq[v] - logp[v]);
        kl += k;
        agree += argmax(rows[t - 1]) == argmax(teacherRows[t - 1]);
      }
      ++scored;
    }
  }
  double perplexity = std::exp(nll / double(scored));
  if (args.has("--json")) {
    nlohmann::ordered_json j;
    j["perplexity"] = perplexity;
    j["kl"] = teacher ? nlohmann::json(kl / double(scored)) : nlohmann::json(nullptr);
    j["top1_agreement"] = teacher ? nlohmann::json(double(agree) / double(scored)) : nlohmann::json(nullptr);
    j["tokens"] = scored;
    j["window"] = window;
    std::cout << j.dump() << "\n";
  } else {
    std::printf("perplexity: %.4f over %zu scored tokens (windows of %lld)\n", perplexity, scored,
                (long long)window);
    if (teacher)
      std::printf("kl: %.6g\ntop1_agreement: %.6f\n", kl / double(scored), double(agree) / double(scored));
  }
  return 0;
}

} // namespace kiln
