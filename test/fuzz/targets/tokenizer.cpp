// The tokenizer: encode on arbitrary bytes must decode back to exactly those bytes (byte-level
// BPE loses nothing); decode on arbitrary ids (the input read as int32s) returns or refuses an
// id outside the vocabulary, and streaming the ids gives the same bytes as decoding them at once.
#include "../FuzzUtil.h"
#include "kiln/Runtime/Tokenizer.h"

#include <cstdlib>
#include <cstring>

namespace {
std::unique_ptr<kiln::Tokenizer> tokenizer;
}

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  tokenizer = kiln::Tokenizer::fromDir(kiln::fuzz::required("KILN_FUZZ_MODEL"));
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string_view text(reinterpret_cast<const char *>(data), size);
  std::vector<int32_t> ids = tokenizer->encode(text);
  if (tokenizer->decode(ids) != text)
    std::abort(); // encode lost or changed bytes
  std::vector<int32_t> arbitrary(size / 4);
  if (!arbitrary.empty())
    std::memcpy(arbitrary.data(), data, arbitrary.size() * 4);
  kiln::fuzz::refusalsAllowed([&] {
    std::string all = tokenizer->decode(arbitrary);
    kiln::TextStreamer streamer(*tokenizer);
    std::string streamed;
    for (int32_t id : arbitrary)
      streamed += streamer.push(id);
    streamed += streamer.flush();
    if (streamed != all)
      std::abort(); // the streamer changed the bytes
  });
  return 0;
}
