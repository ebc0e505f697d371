// A YAML pipeline file (parsePipelineYaml) on arbitrary text: every refusal is one kiln::Error
// naming file:line:col, and what it accepts builds into a pass manager.
#include "PipelineFuzz.h"

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  kiln::fuzz::registerPipelinePasses();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string yaml(reinterpret_cast<const char *>(data), size);
  kiln::fuzz::refusalsAllowed([&] { kiln::fuzz::mustBuild(kiln::parsePipelineYaml(yaml, "fuzz.yaml")); });
  return 0;
}
