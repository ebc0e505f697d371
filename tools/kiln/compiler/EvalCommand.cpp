//===- EvalCommand.cpp - kiln eval ----------------------------------------===//
//
// Perplexity over independent windows of W tokens (stride W), scoring tokens
// 1..W-1 of each window, over the first N tokens of a text file; with
// --against, also the KL divergence KL(teacher || model) and top-1 agreement
// at the same positions. Models run on the reference interpreter (their
// prefill function scores a whole window at once); compiled artifacts run
// on the runtime, one prefilled token and then one decode step per token,
// so every position's logits come from the code users run.
//
//===----------------------------------------------------------------------===//
#include "../Args.h"
#include "../OrtSession.h"
#include "Commands.h"

#include "kiln/Passes/Pipeline.h"
#include "kiln/Interpreter/Interpreter.h"
#include "kiln/Runtime/Runtime.h"
#include "kiln/Runtime/Tokenizer.h"
#include "kiln/Support/Error.h"
#include "kiln/Support/File.h"
#include "kiln/Support/ParallelRows.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <thread>

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

/// Logits after every token of a window, from a model or an artifact.
class Scorer {
public:
  virtual ~Scorer() = default;
  /// Row t: the logits after ids[0..t], for t = 0 .. ids.size() - 2.
  virtual std::vector<std::vector<double>> score(const std::vector<int32_t> &ids) = 0;
  virtual int64_t vocabSize() const = 0;
  virtual int64_t maxWindow() const = 0;
  virtual const std::string &tokenizerDir() const = 0;
};

class ReferenceScorer : public Scorer {
public:
  ReferenceScorer(LoadedModel model, unsigned threads) : model_(std::move(model)), ref_(*model_.module) {
    if (threads)
      ref_.interpreter().setThreads(threads);
  }
  std::vector<std::vector<double>> score(const std::vector<int32_t> &ids) override {
    auto rows = ref_.scoreAll(ids);
    rows.resize(ids.size() - 1);
    return rows;
  }
  int64_t vocabSize() const override { return ref_.vocabSize(); }
  int64_t maxWindow() const override { return ref_.promptLen(); }
  const std::string &tokenizerDir() const override { return model_.checkpointDir; }

private:
  LoadedModel model_;
  ReferenceModel ref_;
};

class ArtifactScorer : public Scorer {
public:
  ArtifactScorer(const std::string &dir, int threads)
      : artifact_(rt::Artifact::open(dir, rt::Artifact::Options())), session_(*artifact_, threads), dir_(dir) {}
  std::vector<std::vector<double>> score(const std::vector<int32_t> &ids) override {
    session_.reset();
    std::vector<std::vector<double>> rows;
    const float *logits = session_.prefill(ids.data(), 1);
    for (size_t t = 0; t + 1 < ids.size(); ++t) {
      if (t > 0)
        logits = session_.decode(ids[t]);
      rows.emplace_back(logits, logits + artifact_->vocabSize());
    }
    return rows;
  }
  int64_t vocabSize() const override { return artifact_->vocabSize(); }
  int64_t maxWindow() const override { return artifact_->contextLength(); }
  const std::string &tokenizerDir() const override { return dir_; }

private:
  std::unique_ptr<rt::Artifact> artifact_;
  rt::Session session_;
  std::string dir_;
};

/// An onnx artifact, token by token in ONNX Runtime.
class OrtScorer : public Scorer {
public:
  OrtScorer(const std::string &dir, int threads) : session_(dir, threads), dir_(dir) {}
  std::vector<std::vector<double>> score(const std::vector<int32_t> &ids) override {
    session_.reset();
    std::vector<std::vector<double>> rows;
    for (size_t t = 0; t + 1 < ids.size(); ++t) {
      std::vector<float> logits = session_.append({ids[t]});
      rows.emplace_back(logits.begin(), logits.end());
    }
    return rows;
  }
  int64_t vocabSize() const override { return session_.vocabSize(); }
  int64_t maxWindow() const override { return session_.contextLength(); }
  const std::string &tokenizerDir() const override { return dir_; }

private:
  OrtSession session_;
  std::string dir_;
};

bool isArtifact(const std::string &path) {
  return std::filesystem::is_regular_file(std::filesystem::path(path) / "manifest.yaml");
}

struct Score {
  double perplexity = 0, kl = 0, top1 = 0;
  size_t scored = 0;
};

/// Perplexity of each model (and KL / top-1 against `teacher`) over `tokens`,
/// window by window so the teacher scores each window once. Rows are scored
/// in parallel and summed in token order, so the result does not depend on
/// the thread count.
std::vector<Score> evaluate(const std::vector<std::unique_ptr<Scorer>> &models, Scorer *teacher,
                            const std::vector<int32_t> &tokens, int64_t window, unsigned threads) {
  std::vector<double> nll(models.size(), 0), kl(models.size(), 0);
  std::vector<size_t> agree(models.size(), 0);
  size_t scored = 0;
  for (size_t begin = 0; begin + 1 < tokens.size(); begin += size_t(window)) {
    size_t end = std::min(tokens.size(), begin + size_t(window));
    std::vector<int32_t> ids(tokens.begin() + long(begin), tokens.begin() + long(end));
    if (ids.size() < 2)
      break;
    // The teacher's log-probabilities and probabilities of each row, once per window.
    std::vector<std::vector<double>> teacherLogp, teacherP;
    std::vector<size_t> teacherTop;
    if (teacher) {
      auto rows = teacher->score(ids);
      teacherLogp.resize(rows.size()), teacherP.resize(rows.size()), teacherTop.resize(rows.size());
      parallelRows(rows.size(), threads, [&](size_t t) {
        teacherLogp[t] = logSoftmax(rows[t]);
        teacherP[t].resize(teacherLogp[t].size());
        for (size_t v = 0; v < teacherLogp[t].size(); ++v)
          teacherP[t][v] = std::exp(teacherLogp[t][v]);
        teacherTop[t] = argmax(rows[t]);
      });
    }
    std::vector<double> rowNll(ids.size() - 1), rowKl(ids.size() - 1);
    std::vector<char> rowAgree(ids.size() - 1);
    for (size_t m = 0; m < models.size(); ++m) {
      auto rows = models[m]->score(ids);
      parallelRows(rows.size(), threads, [&](size_t r) {
        std::vector<double> logp = logSoftmax(rows[r]);
        rowNll[r] = logp[size_t(ids[r + 1])];
        if (teacher) {
          const std::vector<double> &logq = teacherLogp[r], &q = teacherP[r];
          double k = 0;
          for (size_t v = 0; v < logq.size(); ++v)
            k += q[v] * (logq[v] - logp[v]);
          rowKl[r] = k;
          rowAgree[r] = argmax(rows[r]) == teacherTop[r];
        }
      });
      for (size_t r = 0; r < rows.size(); ++r) {
        nll[m] -= rowNll[r];
        if (teacher)
          kl[m] += rowKl[r], agree[m] += size_t(rowAgree[r]);
      }
    }
    scored += ids.size() - 1;
  }
  std::vector<Score> out(models.size());
  for (size_t m = 0; m < models.size(); ++m) {
    out[m].perplexity = std::exp(nll[m] / double(scored));
    out[m].kl = kl[m] / double(scored);
    out[m].top1 = double(agree[m]) / double(scored);
    out[m].scored = scored;
  }
  return out;
}
} // namespace

int evalCommand(int argc, char **argv) {
  Args args("eval", {"--text", "--window", "--max-tokens", "--against", "--threads", "--pipeline", "--passes",
                     "--pipelines", "--load-pass-plugin", "--calibration", "--adapter"},
            {"--json", "--table", "--help"});
  args.parse(argc, argv, 2);
  if (args.has("--help")) {
    std::cout << "usage: kiln eval MODEL_OR_ARTIFACT... --text FILE [--window W] [--max-tokens N]\n"
                 "                 [--against TEACHER] [--pipeline FILE.yaml | --passes LIST]\n"
                 "                 [--pipelines A.yaml,B.yaml,...] [--load-pass-plugin PATH] [--calibration FILE]\n"
                 "                 [--adapter PEFT_DIR] [--threads N] [--json | --table]\n"
                 "MODEL_OR_ARTIFACT and TEACHER: a checkpoint folder, a kiln .mlir file, or a compiled\n"
                 "artifact (run on the runtime, one token at a time). The pipeline (if any) is applied\n"
                 "(and --adapter, merged) to models, not to the teacher. Perplexity over independent windows of W tokens\n"
                 "(default: the context length), scoring tokens 1..W-1 of each; with --against,\n"
                 "KL(teacher || model) and top-1 agreement. Several models: one row each (--table,\n"
                 "the default for several, or --json: one object per line). --pipelines: one row per\n"
                 "model and pipeline (the teacher scores each window once for all of them).\n";
    return 0;
  }
  const std::vector<std::string> &paths = args.positional();
  if (paths.empty())
    args.error("missing MODEL_OR_ARTIFACT");
  if (!args.has("--text"))
    args.error("missing --text FILE");
  std::string textPath = args.get("--text");
  std::string text = readFile(textPath, "cannot open text file");
  if (args.has("--json") && args.has("--table"))
    args.error("give --json or --table, not both");
  bool hasPipeline = args.has("--pipeline") || args.has("--passes") || args.has("--pipelines");
  if (args.has("--pipelines") && (args.has("--pipeline") || args.has("--passes")))
    args.error("give --pipelines, or one --pipeline / --passes");
  // Each model runs once per pipeline of --pipelines ("" = --pipeline/--passes or none).
  std::vector<std::string> pipelineFiles = {""};
  if (args.has("--pipelines")) {
    pipelineFiles.clear();
    std::stringstream list(args.get("--pipelines"));
    for (std::string item; std::getline(list, item, ',');)
      if (!item.empty())
        pipelineFiles.push_back(item);
    if (pipelineFiles.empty())
      args.error("--pipelines lists no file");
    userPipeline(args, ""); // plugins and pass registration
  }

  int64_t window = args.getInt("--window", 0);
  if (window < 0 || window == 1)
    args.error("--window must be at least 2");
  int threads = int(std::max<int64_t>(0, args.getInt("--threads", 0)));
  auto open = [&](const std::string &path, bool applyPipeline, const std::string &pipelineFile = "") -> std::unique_ptr<Scorer> {
    if (isArtifact(path)) {
      if (applyPipeline && hasPipeline)
        args.error(path + " is a compiled artifact: --pipeline/--passes apply to models only");
      if (applyPipeline && args.has("--adapter"))
        args.error(path + " is a compiled artifact: --adapter applies to models only");
      if (isOnnxArtifact(path))
        return std::make_unique<OrtScorer>(path, threads);
      return std::make_unique<ArtifactScorer>(path, threads > 0 ? threads : 0);
    }
    ImportOptions options;
    options.allLogits = true;
    int64_t w = window;
    if (w == 0 && std::filesystem::is_directory(path))
      w = Checkpoint::open(path)->config().nPositions;
    options.promptLen = options.ctxLen = w;
    if (applyPipeline)
      setAdapterOptions(args, options, false);
    LoadedModel model = loadModel(path, options);
    if (applyPipeline && !pipelineFile.empty()) {
      setCalibration(args, *model.module);
      std::string file = resolvePipelineFile(pipelineFile);
      runPipeline(parsePipelineYaml(readFile(file, "cannot open pipeline file"), file), *model.module,
                  pipelineFile + ": the pass pipeline");
    } else if (applyPipeline) {
      applyUserPipeline(args, *model.module);
    }
    return std::make_unique<ReferenceScorer>(std::move(model), unsigned(threads));
  };

  std::unique_ptr<Scorer> teacher = args.has("--against") ? open(args.get("--against"), false) : nullptr;
  struct Row {
    std::string path, pipeline;
    Score score;
  };
  std::vector<Row> rows;
  std::vector<std::unique_ptr<Scorer>> models;
  int64_t usedWindow = 0;
  for (const std::string &path : paths)
    for (const std::string &pipelineFile : pipelineFiles) {
      std::unique_ptr<Scorer> model = open(path, true, pipelineFile);
      int64_t w = window > 0 ? window : model->maxWindow();
      if (usedWindow != 0 && w != usedWindow)
        fail(path, "its context (" + std::to_string(w) + ") differs from the first model's window " +
                       std::to_string(usedWindow) + ": give --window");
      if (w > model->maxWindow())
        fail(path, "--window " + std::to_string(w) + " is longer than its context of " + std::to_string(model->maxWindow()));
      if (teacher && w > teacher->maxWindow())
        fail(args.get("--against"), "--window " + std::to_string(w) + " is longer than its context of " +
                                        std::to_string(teacher->maxWindow()));
      if (teacher && teacher->vocabSize() != model->vocabSize())
        fail(path, "vocabulary of " + std::to_string(model->vocabSize()) + " does not match the teacher's " +
                       std::to_string(teacher->vocabSize()));
      usedWindow = w;
      rows.push_back({path, pipelineFile, Score()});
      models.push_back(std::move(model));
    }
  auto tokenizer = Tokenizer::fromDir(models.front()->tokenizerDir());
  std::vector<int32_t> tokens = tokenizer->encode(text);
  int64_t maxTokens = args.getInt("--max-tokens", int64_t(tokens.size()));
  if (maxTokens < 2)
    args.error("--max-tokens must be at least 2");
  if (int64_t(tokens.size()) > maxTokens)
    tokens.resize(size_t(maxTokens));
  if (tokens.size() < 2)
    fail(textPath, "needs at least 2 tokens");
  for (size_t m = 0; m < models.size(); ++m)
    for (int32_t id : tokens)
      if (id >= models[m]->vocabSize())
        fail(textPath, "token id " + std::to_string(id) + " is outside the vocabulary of " +
                           std::to_string(models[m]->vocabSize()) + " of " + rows[m].path);
  std::vector<Score> scores = evaluate(models, teacher.get(), tokens, usedWindow,
                                       threads > 0 ? unsigned(threads) : std::max(1u, std::thread::hardware_concurrency()));
  for (size_t m = 0; m < rows.size(); ++m)
    rows[m].score = scores[m];

  bool table = args.has("--table") || (rows.size() > 1 && !args.has("--json"));
  if (args.has("--json")) {
    for (const Row &r : rows) {
      nlohmann::ordered_json j;
      if (rows.size() > 1)
        j["model"] = r.path;
      if (!r.pipeline.empty())
        j["pipeline"] = r.pipeline;
      j["perplexity"] = r.score.perplexity;
      j["kl"] = teacher ? nlohmann::json(r.score.kl) : nlohmann::json(nullptr);
      j["top1_agreement"] = teacher ? nlohmann::json(r.score.top1) : nlohmann::json(nullptr);
      j["tokens"] = r.score.scored;
      j["window"] = usedWindow;
      std::cout << j.dump() << "\n";
    }
  } else if (table) {
    std::printf("| model | perplexity | KL | top-1 agreement | tokens |\n| --- | --- | --- | --- | --- |\n");
    for (const Row &r : rows) {
      std::string name = r.pipeline.empty() ? r.path : r.path + " [" + r.pipeline + "]";
      if (teacher)
        std::printf("| %s | %.4f | %.3g | %.4f | %zu |\n", name.c_str(), r.score.perplexity, r.score.kl, r.score.top1,
                    r.score.scored);
      else
        std::printf("| %s | %.4f | - | - | %zu |\n", name.c_str(), r.score.perplexity, r.score.scored);
    }
  } else {
    const Score &s = rows[0].score;
    std::printf("perplexity: %.4f over %zu scored tokens (windows of %lld)\n", s.perplexity, s.scored,
                (long long)usedWindow);
    if (teacher)
      std::printf("kl: %.6g\ntop1_agreement: %.6f\n", s.kl, s.top1);
  }
  return 0;
}

} // namespace kiln
