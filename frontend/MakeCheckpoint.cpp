//===- MakeCheckpoint.cpp - random-weight GPT-2 checkpoints ---------------===//
//
// Writes checkpoints in exactly the format Hugging Face produces, so tests and
// benchmarks exercise the real loading code on any shape and dtype.
//
//===----------------------------------------------------------------------===//
#include "kiln/Frontend/Checkpoint.h"

#include "kiln/Support/Error.h"
#include "kiln/Support/Float16.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace fs = std::filesystem;

namespace kiln {

GPT2Config presetConfig(const std::string &preset) {
  GPT2Config c;
  if (preset == "tiny") {
    c.nLayer = 2, c.nEmbd = 64, c.nHead = 4, c.nPositions = 128;
  } else if (preset == "gpt2") {
    c.nLayer = 12, c.nEmbd = 768, c.nHead = 12, c.nPositions = 1024;
  } else if (preset == "gpt2-medium") {
    c.nLayer = 24, c.nEmbd = 1024, c.nHead = 16, c.nPositions = 1024;
  } else {
    throw Error("unknown preset '" + preset + "' (choose tiny, gpt2 or gpt2-medium)");
  }
  return c;
}

namespace {
/// splitmix64: a tiny, portable generator, so a seed gives the same
/// checkpoint on every platform and standard library.
class Random {
public:
  explicit Random(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  double uniform() { return double((next() >> 11) + 1) / 9007199254740993.0; } // (0, 1)
  double normal() { // Box-Muller
    double u = uniform(), v = uniform();
    return std::sqrt(-2.0 * std::log(u)) * std::cos(6.283185307179586 * v);
  }

private:
  uint64_t state_;
};

std::vector<uint8_t> encode(const std::vector<float> &values, DType dtype) {
  std::vector<uint8_t> bytes(values.size() * dtypeSize(dtype));
  for (size_t i = 0; i < values.size(); ++i) {
    if (dtype == DType::F32) {
      std::memcpy(&bytes[4 * i], &values[i], 4);
    } else {
      uint16_t h = dtype == DType::F16 ? floatToHalf(values[i]) : floatToBf16(values[i]);
      std::memcpy(&bytes[2 * i], &h, 2);
    }
  }
  return bytes;
}

void copyFile(const fs::path &from, const fs::path &to) {
  if (!fs::exists(from))
    fail(from.string(), "missing (needed to copy the tokenizer)");
  fs::copy_file(from, to, fs::copy_options::overwrite_existing);
}
} // namespace

void writeRandomCheckpoint(const CheckpointSpec &spec, const std::string &dir) {
  const GPT2Config &c = spec.config;
  // Validate the config exactly as loading will.
  GPT2Config::parse(c.toJson(), "(generated config)");
  if (spec.dtype != DType::F32 && spec.dtype != DType::F16 && spec.dtype != DType::BF16)
    throw Error("make-checkpoint writes f32, f16 or bf16 only");
  if (spec.shards < 1)
    throw Error("--shards must be at least 1");
  fs::create_directories(dir);
  Random rng(spec.seed * 0x2545f4914f6cdd1dull + 1);

  std::vector<SafeTensorsWriter> writers(size_t(spec.shards));
  std::vector<std::pair<std::string, int>> weightMap;
  size_t totalBytes = 0, next = 0;
  for (const auto &t : expectedTensors(c)) {
    int64_t n = 1;
    for (int64_t d : t.shape)
      n *= d;
    std::vector<float> values(static_cast<size_t>(n));
    const std::string &name = t.name;
    bool isNormWeight = name.find("ln_") != std::string::npos && name.find(".weight") != std::string::npos;
    bool isBias = name.size() > 5 && name.compare(name.size() - 5, 5, ".bias") == 0;
    // Embeddings get a larger scale than HF's 0.02 so random models produce
    // peaked logits: greedy tokens then have margins worth testing against.
    double stddev = name == "wte.weight" || name == "lm_head.weight" ? 0.1
                    : name == "wpe.weight"                           ? 0.05
                    : isNormWeight                                   ? 0.1
                    : isBias                                         ? 0.02
                                                                     : 0.02 * std::sqrt(768.0 / double(c.nEmbd));
    for (auto &v : values)
      v = float((isNormWeight ? 1.0 : 0.0) + stddev * rng.normal());
    std::string stored = (spec.prefixed && name != "lm_head.weight") ? "transformer." + name : name;
    // Spread tensors over shards in order, by size.
    int shard = int(next % size_t(spec.shards));
    if (spec.shards > 1 && name != "wte.weight")
      ++next;
    auto bytes = encode(values, spec.dtype);
    totalBytes += bytes.size();
    writers[size_t(shard)].add(stored, spec.dtype, t.shape, std::move(bytes));
    weightMap.push_back({stored, shard});
  }
  for (auto &w : writers)
    w.setMetadata("format", "pt");

  auto shardName = [&](int i) {
    if (spec.shards == 1)
      return std::string("model.safetensors");
    char buf[64];
    std::snprintf(buf, sizeof buf, "model-%05d-of-%05d.safetensors", i + 1, spec.shards);
    return std::string(buf);
  };
  for (int i = 0; i < spec.shards; ++i)
    writers[size_t(i)].write((fs::path(dir) / shardName(i)).string());
  if (spec.shards > 1) {
    nlohmann::ordered_json index;
    index["metadata"] = {{"total_size", totalBytes}};
    for (const auto &[name, shard] : weightMap)
      index["weight_map"][name] = shardName(shard);
    std::ofstream((fs::path(dir) / "model.safetensors.index.json").string()) << index.dump(2) << "\n";
  }
  std::ofstream((fs::path(dir) / "config.json").string()) << c.toJson();
  if (!spec.tokenizerDir.empty()) {
    copyFile(fs::path(spec.tokenizerDir) / "vocab.json", fs::path(dir) / "vocab.json");
    copyFile(fs::path(spec.tokenizerDir) / "merges.txt", fs::path(dir) / "merges.txt");
  }
}

} // namespace kiln
