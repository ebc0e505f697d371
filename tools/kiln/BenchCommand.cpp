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

#include "kiln/Runtime/Profile.h"
#include "kiln/Runtime/Runtime.h"
#include "kiln/Runtime/Sampler.h"
#include "kiln/Support/Error.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <atomic>
#include <memory>
#include <sys/resource.h>
#include <thread>

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
/// --floor's streaming read bandwidth, in process:
/// `threads` threads each sum their slice of a buffer far larger than the caches; the best
/// of `passes` passes, in GB/s (1e9 bytes), each timed from the first thread's start to the
/// last one's end.
double readBandwidth(int threads, size_t bytes = size_t(512) << 20, int passes = 5) {
  size_t n = bytes / sizeof(uint64_t);
  // In 2 MiB pages, as the runtime maps weights.bin and its caches: with 4 KiB pages the
  // loop paid TLB misses the decode it is compared with does not (it read ~0.7x the rate).
  rt::AlignedFloats storage = rt::alignedZeros(n * 2);
  uint64_t *buffer = reinterpret_cast<uint64_t *>(storage.get());
  auto slice = [&](int t) { return std::make_pair(n * size_t(t) / size_t(threads), n * size_t(t + 1) / size_t(threads)); };
  {
    std::vector<std::thread> touch;
    for (int t = 0; t < threads; ++t)
      touch.emplace_back([&, t] {
        auto [b, e] = slice(t);
        for (size_t i = b; i < e; ++i)
          buffer[i] = i * 2654435761u;
      });
    for (auto &th : touch)
      th.join();
  }
  double best = 0;
  std::atomic<uint64_t> sink{0};
  for (int pass = 0; pass < passes; ++pass) {
    std::atomic<int> ready{0};
    std::vector<Clock::time_point> start(static_cast<size_t>(threads)), end(static_cast<size_t>(threads));
    std::vector<std::thread> readers;
    for (int t = 0; t < threads; ++t)
      readers.emplace_back([&, t] {
        ready.fetch_add(1);
        while (ready.load() < threads) {
        }
        auto [b, e] = slice(t);
        start[size_t(t)] = Clock::now();
        // Four streams a line at a time, eight sums each: many loads in flight, as the
        // kernels keep (one chain of adds over one stream read ~0.7x what a decode reads in
        // this VM's slow memory phase).
        const size_t quarter = (e - b) / 32 * 8;
        uint64_t s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (size_t i = b; i < b + quarter; i += 8)
          for (size_t q = 0; q < 4; ++q)
            for (size_t j = 0; j < 8; ++j)
              s[j] += buffer[i + q * quarter + j];
        uint64_t sum = 0;
        for (size_t i = b + 4 * quarter; i < e; ++i)
          sum += buffer[i];
        for (uint64_t v : s)
          sum += v;
        end[size_t(t)] = Clock::now();
        sink.fetch_add(sum);
      });
    for (auto &th : readers)
      th.join();
    double seconds = std::chrono::duration<double>(*std::max_element(end.begin(), end.end()) -
                                                   *std::min_element(start.begin(), start.end()))
                         .count();
    best = std::max(best, double(n * sizeof(uint64_t)) / seconds / 1e9);
  }
  if (sink.load() == 1) // keeps the sums
    std::fprintf(stderr, " ");
  return best;
}

/// --profile: one more run (after the timed ones, so they are not perturbed) with a profiler
/// attached; its report as JSON (printProfile prints it as a table).
nlohmann::ordered_json profileRun(rt::Session &session, const std::vector<int32_t> &prompt, int64_t n,
                                  bool perLayer) {
  rt::Profiler profiler;
  session.reset();
  session.setProfiler(&profiler);
  session.feedPrompt(prompt.data(), prompt.size());
  int32_t id = session.greedy();
  for (int64_t i = 0; i < n; ++i) {
    session.feedToken(id);
    id = session.greedy();
  }
  session.setProfiler(nullptr);

  using P = rt::Profiler;
  const P::Phase phases[] = {P::Prefill, P::Decode};
  // Prefill per run of the whole prompt; decode per step.
  double per[2] = {1.0, double(std::max<uint64_t>(1, profiler.runs(P::Decode)))};
  nlohmann::ordered_json report;
  report["threads"] = session.threads();
  for (P::Phase phase : phases) {
    nlohmann::ordered_json j;
    double total = profiler.totalNs(phase);
    j[phase == P::Prefill ? "ms" : "ms_per_step"] = total / per[phase] / 1e6;
    j[phase == P::Prefill ? "graph_runs" : "steps"] = profiler.runs(phase);
    double wait = 0;
    nlohmann::ordered_json kinds = nlohmann::ordered_json::object();
    for (int k = 0; k < P::kinds(); ++k) {
      P::Stat st = profiler.stat(phase, k);
      if (st.calls == 0 && st.ns == 0)
        continue;
      wait += st.waitNs;
      kinds[P::kindName(k)] = {{"ms", st.ns / per[phase] / 1e6}, {"share", total > 0 ? st.ns / total : 0.0},
                               {"wait_ms", st.waitNs / per[phase] / 1e6}, {"calls", double(st.calls) / per[phase]}};
    }
    j["wait_ms"] = wait / per[phase] / 1e6;
    j["kinds"] = kinds;
    if (perLayer) {
      nlohmann::ordered_json layers = nlohmann::ordered_json::array();
      for (int l = -1; l < profiler.layers(); ++l) {
        nlohmann::ordered_json row;
        row["layer"] = l;
        double ms = 0;
        for (int k = 0; k < P::kinds(); ++k) {
          P::Stat st = profiler.stat(phase, k, l);
          if (st.calls == 0 && st.ns == 0)
            continue;
          row["kinds"][P::kindName(k)] = st.ns / per[phase] / 1e6;
          ms += st.ns / per[phase] / 1e6;
        }
        row["ms"] = ms;
        layers.push_back(row);
      }
      j["layers"] = layers;
    }
    report[phase == P::Prefill ? "prefill" : "decode"] = j;
  }
  report["prompt_len"] = prompt.size();
  return report;
}

/// kiln bench --profile's table of profileRun's report.
void printProfile(const nlohmann::ordered_json &report, bool perLayer) {
  using P = rt::Profiler;
  const auto &pre = report["prefill"], &dec = report["decode"];
  int threads = report["threads"].get<int>();
  std::printf("\nprofile (one more run with the profiler attached; %d thread%s):\n", threads, threads == 1 ? "" : "s");
  std::printf("  prefill: %.2f ms for %zu tokens (%llu graph runs); decode: %.3f ms per step (%llu steps)\n",
              pre["ms"].get<double>(), report["prompt_len"].get<size_t>(), pre["graph_runs"].get<unsigned long long>(),
              dec["ms_per_step"].get<double>(), dec["steps"].get<unsigned long long>());
  std::printf("  %-22s %10s %7s %10s %8s   %10s %7s %10s %8s\n", "kind", "prefill ms", "share", "wait ms", "calls",
              "decode ms", "share", "wait ms", "calls");
  for (int k = 0; k < P::kinds(); ++k) {
    const char *name = P::kindName(k);
    bool inPre = pre["kinds"].contains(name), inDec = dec["kinds"].contains(name);
    if (!inPre && !inDec)
      continue;
    std::printf("  %-22s", name);
    for (const auto *ph : {&pre, &dec}) {
      if ((*ph)["kinds"].contains(name)) {
        const auto &e = (*ph)["kinds"][name];
        std::printf(" %10.3f %6.1f%% %10.3f %8.1f  ", e["ms"].get<double>(), 100 * e["share"].get<double>(),
                    e["wait_ms"].get<double>(), e["calls"].get<double>());
      } else {
        std::printf(" %10s %7s %10s %8s  ", "", "", "", "");
      }
    }
    std::printf("\n");
  }
  std::printf("  %-22s %10.3f %7s %10.3f %8s   %10.3f %7s %10.3f\n", "total", pre["ms"].get<double>(), "",
              pre["wait_ms"].get<double>(), "", dec["ms_per_step"].get<double>(), "", dec["wait_ms"].get<double>());
  std::printf("  (decode columns per step; wait ms: the pool's threads waiting for a parallel region to reach them\n"
              "   or for the others to finish it, summed over threads, charged to the kind that issued it)\n");
  if (perLayer) {
    std::printf("  per block (ms; decode per step): %-8s %12s %12s\n", "block", "prefill", "decode");
    for (size_t i = 0; i < pre["layers"].size(); ++i) {
      int l = pre["layers"][i]["layer"].get<int>();
      std::string name = l < 0 ? "outside" : "h." + std::to_string(l);
      double d = i < dec["layers"].size() ? dec["layers"][i]["ms"].get<double>() : 0.0;
      std::printf("  %33s %-8s %12.3f %12.3f\n", "", name.c_str(), pre["layers"][i]["ms"].get<double>(), d);
    }
  }
}

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
            {"--json", "--help", "--profile", "--profile-layers", "--floor"});
  args.parse(argc, argv, 2);
  if (args.has("--help")) {
    std::cout << "usage: kiln bench ARTIFACT_DIR [--prompt-len 128] [-n 128] [--threads N] [--repeats 5]\n"
                 "                  [--kernels NAME] [--device N] [--against BASELINE_DIR] [--batch 1,2,4,8]\n"
                 "                  [--profile] [--profile-layers] [--floor] [--json]\n"
                 "Prefill tokens/s and decode ms/token (medians of --repeats runs after a warm-up).\n"
                 "--against: the baseline artifact runs in the same process, alternating with this one\n"
                 "token by token; prints the speed-ups (median over the repeats of baseline time /\n"
                 "this time).\n"
                 "--batch: aggregate decode tokens/s and ms per step with B sequences decoded at once\n"
                 "(kiln compile --decode-batch), one line (one JSON object with --json) per size.\n"
                 "--profile: after the timed runs, one more run with a profiler attached prints where\n"
                 "prefill and a decode step spend their time, per op kind, with the threads' waiting at\n"
                 "parallel regions; --profile-layers adds each block's total (cpu artifacts).\n"
                 "--floor: measures the streaming read bandwidth after the timed runs (512 MiB, the\n"
                 "session's thread count) and reports decode's floor, the bytes a step reads (weights,\n"
                 "and the KV cache at the measured positions) over that bandwidth, and the fraction.\n";
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
  bool profile = args.has("--profile") || args.has("--profile-layers");
  if (profile && artifact->target() != "cpu")
    args.error("--profile: profiles cpu artifacts only; this one is for " + artifact->target());
  if (args.has("--batch")) {
    if (args.has("--against"))
      args.error("--batch and --against do not combine");
    if (profile)
      args.error("--profile profiles single-sequence runs; it does not combine with --batch");
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
  // The floor: bytes a decode step reads (the weights it streams, and K and V of every layer
  // up to the step's position, averaged over the measured steps) over the read bandwidth.
  nlohmann::ordered_json floor;
  if (args.has("--floor")) {
    double kvPerPosition = 0;
    for (int64_t l = 0; l < artifact->layers(); ++l)
      kvPerPosition += 2.0 * double(artifact->cacheBytes(l)) / double(artifact->contextLength());
    double meanPositions = double(promptLen) + double(n + 1) / 2.0;
    double weightBytes = double(artifact->decodeReadBytes()), kvBytes = kvPerPosition * meanPositions;
    double gbps = readBandwidth(session.threads());
    double floorMs = (weightBytes + kvBytes) / (gbps * 1e9) * 1000.0;
    floor["read_gb_s"] = gbps;
    floor["weight_bytes_per_token"] = weightBytes;
    floor["kv_bytes_per_token"] = kvBytes;
    floor["ms_per_token"] = floorMs;
    floor["decode_vs_floor"] = median(decodeMs) / floorMs;
  }
  nlohmann::ordered_json profileReport;
  if (profile)
    profileReport = profileRun(session, prompt, n, args.has("--profile-layers"));
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
    if (!floor.is_null())
      j["floor"] = floor;
    if (profile)
      j["profile"] = profileReport;
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
    if (!floor.is_null())
      std::printf("floor:     %.1f MB/token (weights %.1f, KV cache %.1f at the measured positions) at %.1f GB/s "
                  "read = %.2f ms/token; decode is %.2fx the floor\n",
                  (floor["weight_bytes_per_token"].get<double>() + floor["kv_bytes_per_token"].get<double>()) / 1e6,
                  floor["weight_bytes_per_token"].get<double>() / 1e6, floor["kv_bytes_per_token"].get<double>() / 1e6,
                  floor["read_gb_s"].get<double>(), floor["ms_per_token"].get<double>(),
                  floor["decode_vs_floor"].get<double>());
    if (profile)
      printProfile(profileReport, args.has("--profile-layers"));
  }
  return 0;
}

} // namespace kiln
