//===- Checkpoint.cpp - a Hugging Face GPT-2 checkpoint folder ------------===//
#include "kiln/Frontend/Checkpoint.h"

#include "kiln/Support/Error.h"
#include "kiln/Support/File.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace fs = std::filesystem;

namespace kiln {

std::vector<ExpectedTensor> expectedTensors(const GPT2Config &c) {
  const int64_t e = c.nEmbd, inner = c.innerDim();
  std::vector<ExpectedTensor> out = {{"wte.weight", {c.vocabSize, e}},
                                     {"wpe.weight", {c.nPositions, e}}};
  for (int64_t i = 0; i < c.nLayer; ++i) {
    std::string p = "h." + std::to_string(i) + ".";
    out.push_back({p + "ln_1.weight", {e}});
    out.push_back({p + "ln_1.bias", {e}});
    out.push_back({p + "attn.c_attn.weight", {e, 3 * e}});
    out.push_back({p + "attn.c_attn.bias", {3 * e}});
    out.push_back({p + "attn.c_proj.weight", {e, e}});
    out.push_back({p + "attn.c_proj.bias", {e}});
    out.push_back({p + "ln_2.weight", {e}});
    out.push_back({p + "ln_2.bias", {e}});
    out.push_back({p + "mlp.c_fc.weight", {e, inner}});
    out.push_back({p + "mlp.c_fc.bias", {inner}});
    out.push_back({p + "mlp.c_proj.weight", {inner, e}});
    out.push_back({p + "mlp.c_proj.bias", {e}});
  }
  out.push_back({"ln_f.weight", {e}});
  out.push_back({"ln_f.bias", {e}});
  if (!c.tieWordEmbeddings)
    out.push_back({"lm_head.weight", {c.vocabSize, e}});
  return out;
}

namespace {
std::string shapeStr(const std::vector<int64_t> &shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string canonicalName(const std::string &name) {
  static const std::string prefix = "transformer.";
  return name.compare(0, prefix.size(), prefix) == 0 ? name.substr(prefix.size()) : name;
}
} // namespace

std::unique_ptr<Checkpoint> Checkpoint::open(const std::string &dir) {
  auto ckpt = std::unique_ptr<Checkpoint>(new Checkpoint());
  ckpt->dir_ = dir;
  if (!isDirectory(dir))
    fail(dir, "not a model directory");
  std::string configPath = (fs::path(dir) / "config.json").string();
  if (!pathExists(configPath))
    fail(configPath, "missing (a Hugging Face GPT-2 folder needs config.json)");
  ckpt->config_ = GPT2Config::load(configPath);

  // The shard list: one file, or the files an index maps tensors to.
  std::vector<std::string> shards;
  fs::path single = fs::path(dir) / "model.safetensors";
  fs::path index = fs::path(dir) / "model.safetensors.index.json";
  if (pathExists(single)) {
    shards.push_back(single.string());
  } else if (pathExists(index)) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(readFile(index.string()));
    } catch (const nlohmann::json::exception &e) {
      fail(index.string(), std::string("index is not valid JSON: ") + e.what());
    }
    if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
      fail(index.string(), "index has no 'weight_map' object");
    std::set<std::string> seen;
    for (auto &[name, file] : j["weight_map"].items()) {
      if (!file.is_string())
        fail(index.string(), "weight_map entry '" + name + "' is not a file name");
      std::string f = file.get<std::string>();
      if (f.find('/') != std::string::npos || f.find("..") != std::string::npos)
        fail(index.string(), "weight_map entry '" + name + "' names a file outside the folder");
      if (seen.insert(f).second)
        shards.push_back((fs::path(dir) / f).string());
    }
  } else if (pathExists(fs::path(dir) / "pytorch_model.bin")) {
    fail(single.string(), "missing; only safetensors checkpoints are read (pytorch_model.bin "
                          "found: convert it with safetensors' convert script)");
  } else {
    fail(single.string(), "missing (nor is there a model.safetensors.index.json)");
  }

  for (const auto &path : shards) {
    if (!pathExists(path))
      fail(path, "missing (listed in model.safetensors.index.json)");
    ckpt->files_.push_back(SafeTensorsFile::open(path));
    for (const auto &[name, view] : ckpt->files_.back()->tensors()) {
      std::string canon = canonicalName(name);
      if (!ckpt->byName_.emplace(canon, &view).second)
        fail(path, "tensor '" + name + "' appears twice in the checkpoint");
    }
  }

  const GPT2Config &c = ckpt->config_;
  ckpt->tied_ = c.tieWordEmbeddings || !ckpt->has("lm_head.weight");
  if (!c.tieWordEmbeddings && !ckpt->has("lm_head.weight"))
    fail(shards.front(), "missing tensor 'lm_head.weight' (config says tie_word_embeddings=false)");
  GPT2Config check = c;
  check.tieWordEmbeddings = ckpt->tied_;
  for (const auto &want : expectedTensors(check)) {
    auto it = ckpt->byName_.find(want.name);
    if (it == ckpt->byName_.end())
      fail(shards.front(), "missing tensor '" + want.name + "'");
    const TensorView &t = *it->second;
    if (t.shape != want.shape)
      fail(t.file, "tensor '" + t.name + "' has shape " + shapeStr(t.shape) + " but the config implies " +
                       shapeStr(want.shape));
    if (t.dtype != DType::F32 && t.dtype != DType::F16 && t.dtype != DType::BF16)
      fail(t.file, "tensor '" + t.name + "' has dtype " + dtypeName(t.dtype) +
                       " (supported: F32, F16, BF16)");
  }
  return ckpt;
}

bool Checkpoint::has(const std::string &name) const { return byName_.count(name) != 0; }

const TensorView &Checkpoint::tensor(const std::string &name) const {
  auto it = byName_.find(name);
  if (it == byName_.end())
    fail(dir_, "missing tensor '" + name + "'");
  return *it->second;
}

} // namespace kiln
