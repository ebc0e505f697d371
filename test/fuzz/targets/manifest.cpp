// The artifact manifest (rt::Artifact::open): the fuzzed manifest.yaml in a copy of a compiled
// cpu artifact (model.so, weights.bin, tokenizer), so a manifest that parses goes on to the
// graph tables, buffer sizes and weight offsets it names; one that opens runs a decode step.
#include "../FuzzUtil.h"
#include "kiln/Runtime/Runtime.h"

#include <filesystem>

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  std::string artifact = kiln::fuzz::required("KILN_FUZZ_ARTIFACT");
  std::filesystem::create_directories(kiln::fuzz::scratch() / "artifact");
  for (const auto &e : std::filesystem::directory_iterator(artifact))
    if (e.path().filename() != "manifest.yaml")
      std::filesystem::copy_file(e.path(), kiln::fuzz::scratch() / "artifact" / e.path().filename(),
                                 std::filesystem::copy_options::overwrite_existing);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  kiln::fuzz::write("artifact/manifest.yaml", data, size);
  kiln::fuzz::refusalsAllowed([&] {
    kiln::rt::Artifact::Options options;
    options.skipWeightChecksum = true; // its own test; here the parser is the target
    auto a = kiln::rt::Artifact::open((kiln::fuzz::scratch() / "artifact").string(), options);
    kiln::rt::Session s(*a, 1);
    int32_t id = 0;
    s.prefill(&id, 1);
    s.decode(0);
  });
  return 0;
}
