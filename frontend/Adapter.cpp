//===- Adapter.cpp - a Hugging Face PEFT LoRA adapter folder --------------===//
//
// PEFT's rules, as peft.tuners.lora applies them to GPT2LMHeadModel:
//  - target_modules as a list matches a module whose name equals an entry or
//    ends with "." + entry; as a string it is a regular expression the whole
//    name must match; "all-linear" is every linear but the output layer;
//  - module names are those of model.named_modules(): "transformer.h.0.attn.c_attn";
//  - tensors are saved as base_model.model.<module>.lora_A.weight [r, in] and
//    .lora_B.weight [out, r]; GPT-2's Conv1D makes PEFT force fan_in_fan_out,
//    which changes how PEFT merges, not these shapes.
//
//===----------------------------------------------------------------------===//
#include "kiln/Frontend/Adapter.h"

#include "kiln/Frontend/SafeTensors.h"
#include "kiln/Support/Error.h"
#include "kiln/Support/File.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <map>
#include <regex>
#include <set>

namespace fs = std::filesystem;

namespace kiln {

using json = nlohmann::json;

const std::vector<std::string> &loraModuleSuffixes() {
  static const std::vector<std::string> suffixes = {"attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"};
  return suffixes;
}

namespace {

/// [in, out] of module `suffix` of GPT-2 with `c`.
std::pair<int64_t, int64_t> moduleShape(const std::string &suffix, const GPT2Config &c) {
  if (suffix == "attn.c_attn")
    return {c.nEmbd, 3 * c.nEmbd};
  if (suffix == "attn.c_proj")
    return {c.nEmbd, c.nEmbd};
  if (suffix == "mlp.c_fc")
    return {c.nEmbd, c.innerDim()};
  return {c.innerDim(), c.nEmbd};
}

/// Every module name GPT2LMHeadModel has that is not one of the adaptable
/// linears, so a target naming one is reported as unsupported rather than absent.
bool isOtherGPT2Module(const std::string &t) {
  static const std::set<std::string> others = {"lm_head", "wte", "wpe", "ln_1", "ln_2", "ln_f", "attn", "mlp",
                                               "drop", "attn_dropout", "resid_dropout", "dropout", "act", "h",
                                               "transformer"};
  std::string last = t.substr(t.rfind('.') == std::string::npos ? 0 : t.rfind('.') + 1);
  return others.count(last) > 0;
}

struct Targets {
  enum Kind { List, Regex, AllLinear } kind = List;
  std::vector<std::string> list;
  std::regex regex;
  std::set<int64_t> layers; ///< layers_to_transform; empty: every layer.

  bool matches(const std::string &name, int64_t layer) const {
    if (!layers.empty() && !layers.count(layer))
      return false;
    if (kind == AllLinear)
      return true;
    if (kind == Regex)
      return std::regex_match(name, regex);
    for (const auto &t : list)
      if (name == t || (name.size() > t.size() && name.compare(name.size() - t.size(), t.size(), t) == 0 &&
                        name[name.size() - t.size() - 1] == '.'))
        return true;
    return false;
  }
};

std::string moduleName(int64_t layer, const std::string &suffix) {
  return "transformer.h." + std::to_string(layer) + "." + suffix;
}

Targets parseTargets(const json &j, const GPT2Config &cfg, const std::string &file) {
  Targets t;
  if (!j.contains("target_modules") || j["target_modules"].is_null())
    fail(file, "field 'target_modules' is missing (name the GPT-2 linears the adapter changes)");
  const json &tm = j["target_modules"];
  if (tm.is_string()) {
    std::string s = tm.get<std::string>();
    if (s == "all-linear") {
      t.kind = Targets::AllLinear;
    } else {
      t.kind = Targets::Regex;
      try {
        t.regex = std::regex(s);
      } catch (const std::regex_error &e) {
        fail(file, "field 'target_modules': '" + s + "' is not a regular expression (" + e.what() + ")");
      }
    }
  } else if (tm.is_array() && !tm.empty()) {
    t.kind = Targets::List;
    for (const auto &e : tm) {
      if (!e.is_string())
        fail(file, "field 'target_modules' must list module names (strings)");
      t.list.push_back(e.get<std::string>());
    }
  } else {
    fail(file, "field 'target_modules' must be a module name list, a regular expression or \"all-linear\"");
  }
  if (j.contains("layers_to_transform") && !j["layers_to_transform"].is_null()) {
    const json &l = j["layers_to_transform"];
    std::vector<json> items = l.is_array() ? std::vector<json>(l.begin(), l.end()) : std::vector<json>{l};
    for (const auto &e : items) {
      if (!e.is_number_integer() || e.get<int64_t>() < 0 || e.get<int64_t>() >= cfg.nLayer)
        fail(file, "field 'layers_to_transform': " + e.dump() + " is not a layer of the base model (0.." +
                       std::to_string(cfg.nLayer - 1) + ")");
      t.layers.insert(e.get<int64_t>());
    }
  }
  // Every listed target must name a module of GPT-2 that Kiln adapts (PEFT
  // itself refuses targets that match nothing).
  if (t.kind == Targets::List)
    for (const auto &name : t.list) {
      Targets one;
      one.list = {name};
      bool found = false;
      for (int64_t l = 0; l < cfg.nLayer && !found; ++l)
        for (const auto &s : loraModuleSuffixes())
          found = found || one.matches(moduleName(l, s), l);
      if (!found)
        fail(file, "field 'target_modules': '" + name + "' " +
                       (isOtherGPT2Module(name) ? "is not a linear Kiln adapts" : "matches no module of GPT-2") +
                       " (adaptable: c_attn, c_proj, c_fc, attn.c_proj, mlp.c_proj)");
    }
  return t;
}

void refuseIfSet(const json &j, const char *key, const std::string &file, const std::string &why) {
  if (!j.contains(key))
    return;
  const json &v = j[key];
  bool set = !(v.is_null() || (v.is_boolean() && !v.get<bool>()) || (v.is_array() && v.empty()) ||
               (v.is_object() && v.empty()));
  if (set)
    fail(file, std::string("field '") + key + "' is not supported: " + why);
}

} // namespace

LoraAdapter LoraAdapter::open(const std::string &dir, const GPT2Config &cfg) {
  if (!isDirectory(dir))
    fail(dir, "no such adapter folder (a PEFT folder with adapter_config.json and adapter_model.safetensors)");
  LoraAdapter a;
  a.dir = dir;
  std::string configPath = (fs::path(dir) / "adapter_config.json").string();
  json j;
  try {
    j = json::parse(readFile(configPath, "cannot open adapter config"));
  } catch (const json::exception &e) {
    fail(configPath, std::string("adapter config is not valid JSON: ") + e.what());
  }
  if (!j.is_object())
    fail(configPath, "adapter config is not a JSON object");
  std::string type = j.contains("peft_type") && j["peft_type"].is_string() ? j["peft_type"].get<std::string>() : "";
  if (type != "LORA")
    fail(configPath, "field 'peft_type' is " + (j.contains("peft_type") ? j["peft_type"].dump() : std::string("missing")) +
                         "; only LORA adapters are supported");
  if (!j.contains("r") || !j["r"].is_number_integer() || j["r"].get<int64_t>() < 1)
    fail(configPath, "field 'r' must be a positive integer");
  a.rank = j["r"].get<int64_t>();
  if (a.rank > std::min(cfg.nEmbd, cfg.innerDim()))
    fail(configPath, "field 'r' (" + std::to_string(a.rank) + ") exceeds the base model's n_embd");
  if (!j.contains("lora_alpha") || !j["lora_alpha"].is_number() || !std::isfinite(j["lora_alpha"].get<double>()))
    fail(configPath, "field 'lora_alpha' must be a number");
  a.alpha = j["lora_alpha"].get<double>();
  if (j.contains("use_rslora") && !j["use_rslora"].is_null()) {
    if (!j["use_rslora"].is_boolean())
      fail(configPath, "field 'use_rslora' must be true or false");
    a.rslora = j["use_rslora"].get<bool>();
  }
  a.scale = a.rslora ? a.alpha / std::sqrt(double(a.rank)) : a.alpha / double(a.rank);
  if (j.contains("fan_in_fan_out") && !j["fan_in_fan_out"].is_null() && !j["fan_in_fan_out"].is_boolean())
    fail(configPath, "field 'fan_in_fan_out' must be true or false");
  if (j.contains("bias") && !(j["bias"].is_null() || j["bias"] == "none"))
    fail(configPath, "field 'bias' is " + j["bias"].dump() + ": only \"none\" is supported (trained biases are not read)");
  refuseIfSet(j, "use_dora", configPath, "DoRA adapters are not implemented");
  refuseIfSet(j, "modules_to_save", configPath, "fully trained modules are not read, only low-rank factors");
  refuseIfSet(j, "rank_pattern", configPath, "every module must use the rank 'r'");
  refuseIfSet(j, "alpha_pattern", configPath, "every module must use 'lora_alpha'");
  refuseIfSet(j, "megatron_config", configPath, "Megatron-parallel layers do not exist in GPT-2");
  refuseIfSet(j, "layer_replication", configPath, "layer replication is not implemented");
  if (j.contains("base_model_name_or_path") && j["base_model_name_or_path"].is_string())
    a.baseModel = j["base_model_name_or_path"].get<std::string>();
  Targets targets = parseTargets(j, cfg, configPath);

  std::string weightsPath = (fs::path(dir) / "adapter_model.safetensors").string();
  if (!pathExists(weightsPath)) {
    if (pathExists(fs::path(dir) / "adapter_model.bin"))
      fail((fs::path(dir) / "adapter_model.bin").string(),
           "pickled adapter weights are not read (unpickling runs code); save with safe_serialization=True");
    fail(weightsPath, "missing from the adapter folder");
  }
  auto file = SafeTensorsFile::open(weightsPath);
  // base_model.model.transformer.h.<l>.<suffix>.lora_<A|B>.weight
  static const std::regex name(R"(base_model\.model\.(?:transformer\.)?h\.(\d+)\.(attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)\.lora_([AB])(?:\.default)?\.weight)");
  std::map<std::pair<int64_t, int>, std::pair<const TensorView *, const TensorView *>> found;
  const auto &suffixes = loraModuleSuffixes();
  for (const auto &[key, view] : file->tensors()) {
    std::smatch m;
    if (!std::regex_match(key, m, name))
      fail(weightsPath, "tensor '" + key + "' is not a LoRA factor of a GPT-2 linear "
                        "(expected base_model.model.transformer.h.N.<attn.c_attn|attn.c_proj|mlp.c_fc|mlp.c_proj>.lora_A/B.weight)");
    int64_t layer = std::stoll(m[1].str());
    if (layer >= cfg.nLayer)
      fail(weightsPath, "tensor '" + key + "': the base model has " + std::to_string(cfg.nLayer) + " layers");
    int s = int(std::find(suffixes.begin(), suffixes.end(), m[2].str()) - suffixes.begin());
    if (!targets.matches(moduleName(layer, suffixes[size_t(s)]), layer))
      fail(weightsPath, "tensor '" + key + "': its module is not in target_modules / layers_to_transform");
    if (view.dtype != DType::F32 && view.dtype != DType::F16 && view.dtype != DType::BF16)
      fail(weightsPath, "tensor '" + key + "' is " + dtypeName(view.dtype) + "; LoRA factors must be F32, F16 or BF16");
    auto &slot = found[{layer, s}];
    (m[3] == "A" ? slot.first : slot.second) = &view;
  }
  for (int64_t l = 0; l < cfg.nLayer; ++l)
    for (size_t s = 0; s < suffixes.size(); ++s) {
      std::string module = "h." + std::to_string(l) + "." + suffixes[s];
      auto it = found.find({l, int(s)});
      if (it == found.end()) {
        if (targets.matches(moduleName(l, suffixes[s]), l))
          fail(weightsPath, "no lora_A/lora_B for " + module + ", which target_modules adapts");
        continue;
      }
      auto [A, B] = it->second;
      if (!A || !B)
        fail(weightsPath, std::string("lora_") + (A ? "B" : "A") + " of " + module + " is missing");
      auto [in, out] = moduleShape(suffixes[s], cfg);
      auto shapeText = [](const std::vector<int64_t> &v) {
        std::string t = "[";
        for (size_t i = 0; i < v.size(); ++i)
          t += (i ? ", " : "") + std::to_string(v[i]);
        return t + "]";
      };
      if (A->shape != std::vector<int64_t>{a.rank, in})
        fail(weightsPath, "tensor '" + A->name + "' is " + shapeText(A->shape) + ", the base model needs [" +
                              std::to_string(a.rank) + ", " + std::to_string(in) + "] (r, in)");
      if (B->shape != std::vector<int64_t>{out, a.rank})
        fail(weightsPath, "tensor '" + B->name + "' is " + shapeText(B->shape) + ", the base model needs [" +
                              std::to_string(out) + ", " + std::to_string(a.rank) + "] (out, r)");
      LoraFactors f;
      f.module = module;
      f.in = in;
      f.out = out;
      for (auto [view, dst] : {std::pair{A, &f.a}, {B, &f.b}}) {
        dst->resize(size_t(view->numElements()));
        for (size_t i = 0; i < dst->size(); ++i) {
          (*dst)[i] = float(view->at(i));
          if (!std::isfinite((*dst)[i]))
            fail(weightsPath, "tensor '" + view->name + "' holds a non-finite value");
        }
      }
      a.modules.push_back(std::move(f));
    }
  if (a.modules.empty())
    fail(weightsPath, "holds no LoRA factors");
  return a;
}

std::vector<double> LoraAdapter::convDelta(const LoraFactors &m) const {
  std::vector<double> d(size_t(m.in * m.out), 0.0);
  for (int64_t i = 0; i < m.in; ++i)
    for (int64_t o = 0; o < m.out; ++o) {
      double s = 0;
      for (int64_t k = 0; k < rank; ++k)
        s += double(m.b[size_t(o * rank + k)]) * double(m.a[size_t(k * m.in + i)]);
      d[size_t(i * m.out + o)] = scale * s;
    }
  return d;
}

} // namespace kiln
