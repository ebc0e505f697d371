// The `--passes a,b{opt=1 other=2},c` list (parsePassList) on arbitrary text: refusals are one
// kiln::Error naming the entry, and what it accepts builds into a pass manager.
#include "PipelineFuzz.h"

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  kiln::fuzz::registerPipelinePasses();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string list(reinterpret_cast<const char *>(data), size);
  kiln::fuzz::refusalsAllowed([&] { kiln::fuzz::mustBuild(kiln::parsePassList(list)); });
  return 0;
}
