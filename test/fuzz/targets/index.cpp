// The sharded index (model.safetensors.index.json) of a checkpoint folder: a folder with a
// valid config and two valid shards of a small random GPT-2 (scripts/fuzz.sh makes them), and
// the fuzzed index.
#include "../FuzzUtil.h"
#include "kiln/Frontend/Checkpoint.h"

#include <filesystem>

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  kiln::fuzz::copyFolderExcept(kiln::fuzz::required("KILN_FUZZ_SHARDED_MODEL"), "ckpt", "model.safetensors.index.json");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  kiln::fuzz::write("ckpt/model.safetensors.index.json", data, size);
  kiln::fuzz::refusalsAllowed([&] {
    auto ckpt = kiln::Checkpoint::open((kiln::fuzz::scratch() / "ckpt").string());
    volatile uint8_t sink = 0;
    for (const auto &t : kiln::expectedTensors(ckpt->config())) // every tensor the model reads, end to end
      if (ckpt->has(t.name)) {
        const kiln::TensorView &v = ckpt->tensor(t.name);
        for (size_t i = 0; i < v.bytes; i += 4096)
          sink = sink ^ v.data[i];
        sink = sink ^ (v.bytes ? v.data[v.bytes - 1] : 0);
      }
  });
  return 0;
}
