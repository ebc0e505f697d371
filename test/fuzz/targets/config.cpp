// config.json (GPT2Config::parse) on arbitrary text; an accepted config must describe a model
// the importer can size: positive dimensions that divide, and its JSON must parse back the same.
#include "../FuzzUtil.h"
#include "kiln/Frontend/Config.h"

#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string text(reinterpret_cast<const char *>(data), size);
  kiln::fuzz::refusalsAllowed([&] {
    kiln::GPT2Config c = kiln::GPT2Config::parse(text, "config.json");
    if (c.nEmbd <= 0 || c.nHead <= 0 || c.nLayer <= 0 || c.vocabSize <= 0 || c.nPositions <= 0 ||
        c.nEmbd % c.nHead != 0 || c.innerDim() <= 0)
      std::abort(); // accepted but unusable: the validation missed it
    kiln::GPT2Config again = kiln::GPT2Config::parse(c.toJson(), "round trip");
    if (again.toJson() != c.toJson())
      std::abort();
  });
  return 0;
}
