// kiln serve's request bodies: parseBody then parseCompletion (types, ranges, the prompt as text
// or ids against the vocabulary and the context, sampling options, stop strings, the model name),
// against a compiled artifact opened once. Each body is either a request or a ClientError (4xx).
#include "../FuzzUtil.h"
#include "../../../tools/kiln/serve/Protocol.h"

#include <cstdlib>

namespace {
std::unique_ptr<kiln::rt::Artifact> artifact;
}

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  artifact = kiln::rt::Artifact::open(kiln::fuzz::required("KILN_FUZZ_ARTIFACT"), kiln::rt::Artifact::Options());
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string body(reinterpret_cast<const char *>(data), size);
  try {
    nlohmann::json j = kiln::serve::parseBody(body);
    kiln::serve::CompletionRequest r = kiln::serve::parseCompletion(j, *artifact, artifact->tokenizer(), 1, "kiln");
    if (r.prompt.empty() || int64_t(r.prompt.size()) > artifact->contextLength())
      std::abort(); // accepted a prompt the engine cannot run
    for (int32_t id : r.prompt)
      if (id < 0 || id >= artifact->vocabSize())
        std::abort();
    (void)kiln::serve::dump(kiln::serve::errorBody(400, "invalid_request_error", body));
  } catch (const kiln::serve::ClientError &e) {
    if (e.status < 400 || e.status > 499)
      std::abort();
    (void)kiln::serve::dump(kiln::serve::errorBody(e.status, e.type, e.what(), e.extra));
  }
  return 0;
}
