//===- BenchCommand.cpp - kiln bench --------------------------------------===//
//
// Prefill tokens/s and decode ms/token of a compiled artifact: the medians
// of repeated runs after a warm-up, on a fixed pseudo-random prompt. With
// --against BASELINE both run in one process, token by token in turn, so
// the speed-up is measured under the same memory conditions (on a shared
// VM they drift within seconds).
//
//===----------------------------------------------------------------------===//
#include "Args.h"
#include "Driver.h"

#include "kiln/Runtime/Runtime.h"
#include "kiln/Runtime/Sampler.h"
#include "kiln/Support/Error.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <sys/resource.h>

namespace kiln {

namespace {
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

/// Fills `ids` with fixed pseudo-random token ids (an LCG from `state`, which it advances).
void randomIds(std::vector<int32_t> &ids, int64_t vocab, uint64_t &state) {
  for (auto &id : ids) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    id = int32_t((state >> 33) % uint64_t(std::min<int64_t>(vocab, 50000)));
  }
}
} // namespace

namespace {
/// --batch 1,2,4,8: decode steps of B sequences at once (rt::Batch), like llama.cpp's
/// batched-bench: each slot is prefilled with its own prompt (untimed), then `n` steps
/// decode one greedy token for every slot.
int benchBatches(const Args &args, rt::Artifact &artifact, int64_t promptLen, int64_t n, int64_t threads,
                 int64_t repeats) {
  std::vector<int64_t> sizes;
  for (int32_t b : parseIdList(args.get("--batch"))) {
    if (b < 1 || b > 4096)
      args.error("--batch takes sizes in 1..4096 separated by commas, got '" + args.get("--batch") + "'");
    sizes.push_back(b);
  }
  if (sizes.empty())
    args.error("--batch needs at least one size");
  std::vector<int64_t> compiled = artifact.decodeBatchSizes();
  std::string compiledList;
  for (int64_t c : compiled)
    compiledList += (compiledList.empty() ? "" : ",") + std::to_string(c);
  bool json = args.has("--json");
  double base = 0;
  if (!json) {
    std::printf("artifact:  %s (kernels %s; decode batches compiled: %s)\n", artifact.dir().c_str(),
                artifact.kernels().c_str(), compiledList.c_str());
    std::printf("decode of B sequences at once: %lld-token prompts, %lld steps, median of %lld\n",
                (long long)promptLen, (long long)n, (long long)repeats);
    std::printf("(ms/step is each sequence's ms/token; tokens/s counts all B sequences)\n");
    std::printf("%6s %10s %12s %9s %13s  %s\n", "B", "ms/step", "tokens/s", "vs B=1", "weights GB/s", "runs as");
  }
  for (int64_t B : sizes) {
    rt::Batch batch(artifact, int(threads), int(B));
    std::vector<std::vector<int32_t>> prompts(static_cast<size_t>(B), std::vector<int32_t>(static_cast<size_t>(promptLen)));
    uint64_t state = 12345;
    for (auto &p : prompts)
      randomIds(p, artifact.vocabSize(), state);
    std::vector<int32_t> slots(static_cast<size_t>(B)), ids(static_cast<size_t>(B));
    for (int64_t i = 0; i < B; ++i)
      slots[size_t(i)] = int32_t(i);
    std::vector<double> stepMs;
    for (int64_t r = 0; r <= repeats; ++r) { // run 0 warms up
      for (int64_t i = 0; i < B; ++i) {
        batch.slot(int(i)).reset();
        batch.slot(int(i)).feedPrompt(prompts[size_t(i)].data(), size_t(promptLen));
      }
      auto t0 = Clock::now();
      for (int64_t step = 0; step < n; ++step) {
        for (int64_t i = 0; i < B; ++i)
          ids[size_t(i)] = batch.slot(int(i)).greedy();
        batch.decode(slots.data(), ids.data(), size_t(B));
      }
      if (r > 0)
        stepMs.push_back(1000.0 * since(t0) / double(n));
    }
    double ms = median(stepMs), tokensPerSecond = 1000.0 * double(B) / ms;
    if (B == sizes.front() && B == 1)
      base = tokensPerSecond;
    // What one step runs: the smallest compiled batch that holds B, or steps of the largest.
    std::string runsAs;
    int64_t widest = compiled.back(), fit = 0;
    for (int64_t c : compiled)
      if (c >= B) {
        fit = c;
        break;
      }
    if (B == 1)
      runsAs = "decode";
    else if (fit == B)
      runsAs = "decode_b" + std::to_string(B);
    else if (fit)
      runsAs = "decode_b" + std::to_string(fit) + " (" + std::to_string(fit - B) + " padding rows)";
    else
      runsAs = std::to_string((B + widest - 1) / widest) + " steps of " +
               (widest == 1 ? std::string("decode") : "decode_b" + std::to_string(widest));
    // Each graph call reads the weights once; the batch counts its calls (n per run).
    double callsPerStep = double(batch.steps()) / double(n * (repeats + 1));
    double gbps = double(artifact.weightBytes()) * callsPerStep / (ms / 1000.0) / 1e9;
    if (json) {
      nlohmann::ordered_json j;
      j["batch"] = B;
      j["decode_tokens_per_s"] = tokensPerSecond;
      j["decode_ms_per_step"] = ms;
      if (base > 0)
        j["speedup_vs_batch_1"] = tokensPerSecond / base;
      j["weights_gb_per_s"] = gbps;
      j["runs_as"] = runsAs;
      j["threads"] = batch.slot(0).threads();
      j["kernels"] = artifact.kernels();
      j["prompt_len"] = promptLen;
      j["n"] = n;
      j["weights_bytes"] = artifact.weightBytes();
      std::cout << j.dump() << "\n";
    } else {
      std::printf("%6lld %10.2f %12.1f %8.2fx %13.2f  %s\n", (long long)B, ms, tokensPerSecond,
                  base > 0 ? tokensPerSecond / base : 0.0, gbps, runsAs.c_str());
    }
    std::fflush(stdout);
  }
  return 0;
}
} // namespace

int benchCommand(int argc, char **argv) {
  Args args("bench", {"--prompt-len", "-n", "--threads", "--repeats", "--kernels", "--against", "--device", "--batch"},
            {"--json", "--help"});
  args.parse(argc, argv, 2);
  if (args.has("--help")) {
    std::cout << "usage: kiln bench ARTIFACT_DIR [--prompt-len 128] [-n 128] [--threads N] [--repeats 5]\n"
                 "                  [--kernels NAME] [--device N] [--against BASELINE_DIR] [--batch 1,2,4,8] [--json]\n"
                 "Prefill tokens/s and decode ms/token (medians of --repeats runs after a warm-up).\n"
                 "--against: the baseline artifact runs in the same process, alternating with this one\n"
                 "token by token; prints the speed-ups (median over the repeats of baseline time /\n"
                 "this time).\n"
                 "--batch: aggregate decode tokens/s and ms per step with B sequences decoded at once\n"
                 "(kiln compile --decode-batch), one line (one JSON object with --json) per size.\n";
    return 0;
  }
  int64_t promptLen = args.getInt("--prompt-len", 128), n = args.getInt("-n", 128);
  int64_t threads = args.getInt("--threads", 0), repeats = args.getInt("--repeats", 5);
  if (promptLen < 1 || n < 1 || repeats < 1 || threads < 0)
    args.error("--prompt-len, -n and --repeats must be >= 1, --threads >= 0");

  auto tOpen = Clock::now();
  rt::Artifact::Options options;
  options.kernels = args.get("--kernels", "auto");
  options.device = int(args.getInt("--device", 0));
  if (options.device < 0)
    args.error("--device must be >= 0");
  auto artifact = rt::Artifact::open(args.onePositional("ARTIFACT_DIR"), options);
  double openSeconds = since(tOpen);
  if (promptLen + n > artifact->contextLength())
    args.error("--prompt-len + -n = " + std::to_string(promptLen + n) + " exceeds the artifact's context of " +
               std::to_string(artifact->contextLength()));
  if (args.has("--batch")) {
    if (args.has("--against"))
      args.error("--batch and --against do not combine");
    return benchBatches(args, *artifact, promptLen, n, threads, repeats);
  }
  rt::Session session(*artifact, int(threads));

  std::vector<int32_t> prompt(static_cast<size_t>(promptLen));
  uint64_t state = 12345;
  randomIds(prompt, artifact->vocabSize(), state);
  // The baseline (--against), stepped in turn with the artifact.
  std::unique_ptr<rt::Artifact> baseline;
  std::unique_ptr<rt::Session> baseSession;
  if (args.has("--against")) {
    baseline = rt::Artifact::open(args.get("--against", ""), options);
    if (promptLen + n > baseline->contextLength() || baseline->vocabSize() != artifact->vocabSize())
      args.error("--against " + baseline->dir() + ": needs the same vocabulary and a context of at least " +
                 std::to_string(promptLen + n));
    baseSession = std::make_unique<rt::Session>(*baseline, session); // one set of workers for both
  }
  std::vector<double> prefillRates, decodeMs, prefillSpeedups, decodeSpeedups, ttftMs;
  for (int64_t r = 0; r <= repeats; ++r) { // run 0 warms up
    session.reset();
    auto t0 = Clock::now();
    session.feedPrompt(prompt.data(), prompt.size());
    double prefillSeconds = since(t0), basePrefillSeconds = 0, decodeSeconds = 0, baseDecodeSeconds = 0;
    session.greedy(); // time to first token: the prefill and the first pick
    double ttftSeconds = since(t0);
    if (baseSession) {
      baseSession->reset();
      t0 = Clock::now();
      baseSession->feedPrompt(prompt.data(), prompt.size());
      basePrefillSeconds = since(t0);
    }
    // One decode step, each on its own greedy token (a GPU picks it on the device and
    // reads back one id).
    auto step = [&](rt::Session &s, double &seconds) {
      auto t1 = Clock::now();
      s.feedToken(s.greedy());
      seconds += since(t1);
    };
    for (int64_t i = 0; i < n; ++i) {
      bool baseFirst = baseSession && i % 2; // alternate who goes first
      if (baseFirst)
        step(*baseSession, baseDecodeSeconds);
      step(session, decodeSeconds);
      if (baseSession && !baseFirst)
        step(*baseSession, baseDecodeSeconds);
    }
    if (r == 0)
      continue;
    prefillRates.push_back(double(promptLen) / prefillSeconds);
    ttftMs.push_back(1000.0 * ttftSeconds);
    decodeMs.push_back(1000.0 * decodeSeconds / double(n));
    if (baseSession) {
      prefillSpeedups.push_back(basePrefillSeconds / prefillSeconds);
      decodeSpeedups.push_back(baseDecodeSeconds / decodeSeconds);
    }
  }
  struct rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  uint64_t peakRss = uint64_t(usage.ru_maxrss) * 1024;
  if (args.has("--json")) {
    nlohmann::ordered_json j;
    j["prefill_tok_s"] = median(prefillRates);
    j["decode_ms_per_token"] = median(decodeMs);
    j["weights_bytes"] = artifact->weightBytes();
    j["peak_rss_bytes"] = peakRss;
    j["open_ms"] = openSeconds * 1000;
    j["threads"] = session.threads();
    j["kernels"] = artifact->kernels();
    if (artifact->target() != "cpu")
      j["device"] = artifact->device();
    j["prompt_len"] = promptLen;
    j["n"] = n;
    j["ttft_ms"] = median(ttftMs);
    if (baseline) {
      j["against"] = baseline->dir();
      j["prefill_speedup"] = median(prefillSpeedups);
      j["decode_speedup"] = median(decodeSpeedups);
      j["decode_speedups"] = decodeSpeedups;
    }
    std::cout << j.dump() << "\n";
  } else {
    if (artifact->target() == "cpu")
      std::printf("artifact:  %s (kernels %s, %d threads, opened in %.1f ms)\n", artifact->dir().c_str(),
                  artifact->kernels().c_str(), session.threads(), openSeconds * 1000);
    else
      std::printf("artifact:  %s (%s, opened in %.1f ms)\n", artifact->dir().c_str(), artifact->device().c_str(),
                  openSeconds * 1000);
    std::printf("prefill:   %.1f tokens/s (%lld-token prompt, median of %lld)\n", median(prefillRates),
                (long long)promptLen, (long long)repeats);
    std::printf("first token: %.2f ms (the prefill and the first greedy pick)\n", median(ttftMs));
    std::printf("decode:    %.2f ms/token (%lld tokens)\n", median(decodeMs), (long long)n);
    std::printf("weights:   %.1f MB; peak RSS %.1f MB\n", artifact->weightBytes() / 1e6, peakRss / 1e6);
    if (baseline)
      std::printf("against:   %s (%.1f MB): prefill %.2fx, decode %.2fx as fast (token by token in turn)\n",
                  baseline->dir().c_str(), baseline->weightBytes() / 1e6, median(prefillSpeedups),
                  median(decodeSpeedups));
  }
  return 0;
}

} // namespace kiln
