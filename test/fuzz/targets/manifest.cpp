// The artifact manifest (rt::Artifact::open): the fuzzed manifest.yaml in a copy of a compiled
// cpu artifact (model.so, weights.bin, tokenizer), so a manifest that parses goes on to the
// graph symbols, specializations, weight blocks and adapters it names, and a session is made.
// Graphs are not run: the arena and cache sizes a graph writes are the manifest's word for what
// its model.so was compiled with (one unit from one compile; docs/artifact.md).
#include "../FuzzUtil.h"
#include "kiln/Runtime/Runtime.h"

#include <filesystem>

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  kiln::fuzz::copyFolderExcept(kiln::fuzz::required("KILN_FUZZ_ARTIFACT"), "artifact", "manifest.yaml");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  kiln::fuzz::write("artifact/manifest.yaml", data, size);
  kiln::fuzz::refusalsAllowed([&] {
    kiln::rt::Artifact::Options options;
    options.skipWeightChecksum = true; // its own test; here the parser is the target
    auto a = kiln::rt::Artifact::open((kiln::fuzz::scratch() / "artifact").string(), options);
    kiln::rt::Session s(*a, 1);
    (void)s.position();
  });
  return 0;
}
