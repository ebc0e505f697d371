// The safetensors header and layout checks (SafeTensorsFile::open) on arbitrary bytes; every
// tensor it accepts is read end to end, so a view past the mapping is an ASan report.
#include "../FuzzUtil.h"
#include "kiln/Frontend/SafeTensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string path = kiln::fuzz::write("model.safetensors", data, size);
  kiln::fuzz::refusalsAllowed([&] {
    auto file = kiln::SafeTensorsFile::open(path);
    volatile double sum = 0;
    for (const auto &[name, t] : file->tensors()) {
      bool isFloat = t.dtype == kiln::DType::F32 || t.dtype == kiln::DType::F16 || t.dtype == kiln::DType::BF16 ||
                     t.dtype == kiln::DType::F64;
      if (isFloat && t.numElements() > 0)
        sum = sum + t.at(0) + t.at(size_t(t.numElements() - 1));
      for (size_t i = 0; i < t.bytes; ++i)
        sum = sum + t.data[i];
    }
  });
  return 0;
}
