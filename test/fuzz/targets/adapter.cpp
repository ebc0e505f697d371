// A PEFT LoRA folder (LoraAdapter::open against the shipped model's config): the fuzzed
// adapter_config.json beside a valid adapter_model.safetensors, so the checks of ranks, target
// modules, layers and factor shapes all run.
#include "../FuzzUtil.h"
#include "kiln/Frontend/Adapter.h"
#include "kiln/Frontend/Config.h"

#include <filesystem>

namespace {
kiln::GPT2Config config;
}

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  std::string adapter = kiln::fuzz::required("KILN_FUZZ_ADAPTER");
  config = kiln::GPT2Config::load(kiln::fuzz::required("KILN_FUZZ_MODEL") + "/config.json");
  std::filesystem::create_directories(kiln::fuzz::scratch() / "adapter");
  std::filesystem::copy_file(std::filesystem::path(adapter) / "adapter_model.safetensors",
                             kiln::fuzz::scratch() / "adapter" / "adapter_model.safetensors",
                             std::filesystem::copy_options::overwrite_existing);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  kiln::fuzz::write("adapter/adapter_config.json", data, size);
  kiln::fuzz::refusalsAllowed([&] {
    kiln::LoraAdapter a = kiln::LoraAdapter::open((kiln::fuzz::scratch() / "adapter").string(), config);
    for (const auto &m : a.modules)
      (void)a.convDelta(m);
  });
  return 0;
}
