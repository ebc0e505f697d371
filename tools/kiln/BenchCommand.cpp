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
} // namespace

int benchCommand(int argc, char **argv) {
  Args args("bench", {"--prompt-len", "-n", "--threads", "--repeats", "--kernels", "--against", "--device"},
            {"--json", "--help"});
  args.parse(argc, argv, 2);
  if (args.has("--help")) {
    std::cout << "usage: kiln bench ARTIFACT_DIR [--prompt-len 128] [-n 128] [--threads N] [--repeats 5]\n"
                 "                  [--kernels NAME] [--device N] [--against BASELINE_DIR] [--json]\n"
                 "Prefill tokens/s and decode ms/token (medians of --repeats runs after a warm-up).\n"
                 "--against: the baseline artifact runs in the same process, alternating with this one\n"
                 "token by token; prints the speed-ups (median over the repeats of baseline time /\n"
                 "this time).\n";
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
  rt::Session session(*artifact, int(threads));

  std::vector<int32_t> prompt(static_cast<size_t>(promptLen));
  uint64_t state = 12345;
  for (auto &id : prompt) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    id = int32_t((state >> 33) % uint64_t(std::min<int64_t>(artifact->vocabSize(), 50000)));
  }
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
