//===- RunCommand.cpp - kiln run ARTIFACT (MLIR-free) ---------------------===//
#include "Driver.h"
#include "Generate.h"
#include "OrtSession.h"

#include "kiln/Runtime/Runtime.h"

#include <iostream>

namespace kiln {

int runCommand(int argc, char **argv) {
  Args args("run", kRunValuedOptions, kRunFlagOptions);
  args.parse(argc, argv, 2);
  if (args.has("--help")) {
    std::cout << kRunHelp;
    return 0;
  }
  if (args.has("--reference")) // the interpreter lives in the compiler library
    return runCompilerCommand(argc, argv);
  RunSettings settings = parseRunSettings(args);
  std::vector<int32_t> prompt;
  if (args.has("--prompt-ids")) // parsed first: a bad list is reported before any file is read
    prompt = parseIdList(args.get("--prompt-ids"));
  if (args.positional().empty())
    args.error("missing ARTIFACT_DIR (or --reference MODEL_DIR)");
  for (const char *opt : {"--prompt-len", "--ctx-len"})
    if (args.has(opt))
      args.error(std::string(opt) + " is fixed when the artifact is compiled (see kiln compile)");
  std::string dir = args.onePositional("ARTIFACT_DIR");
  // The engine: a cpu artifact on the runtime, or an onnx artifact in ONNX Runtime (same loop).
  Engine engine;
  std::unique_ptr<rt::Artifact> artifact;
  std::unique_ptr<rt::Session> session;
  std::unique_ptr<OrtSession> ort;
  if (isOnnxArtifact(dir)) {
    if (args.has("--kernels"))
      args.error("--kernels chooses cpu kernels; " + dir + " is an onnx artifact (run in ONNX Runtime)");
    ort = std::make_unique<OrtSession>(dir, int(settings.threads));
    engine.contextLen = ort->contextLength();
    engine.vocabSize = ort->vocabSize();
    engine.prefill = [&ort](const std::vector<int32_t> &ids) { return ort->append(ids); };
    engine.decode = [&ort](int32_t id) { return ort->append({id}); };
    engine.position = [&ort] { return ort->position(); };
  } else {
    rt::Artifact::Options open;
    open.kernels = args.get("--kernels", "auto");
    artifact = rt::Artifact::open(dir, open);
    session = std::make_unique<rt::Session>(*artifact, int(settings.threads));
    engine.contextLen = artifact->contextLength();
    engine.vocabSize = artifact->vocabSize();
    int64_t vocab = engine.vocabSize;
    engine.prefill = [&session, vocab](const std::vector<int32_t> &ids) {
      const float *l = session->prefill(ids.data(), ids.size());
      return std::vector<float>(l, l + vocab);
    };
    engine.decode = [&session, vocab](int32_t id) {
      const float *l = session->decode(id);
      return std::vector<float>(l, l + vocab);
    };
    engine.position = [&session] { return session->position(); };
  }
  std::unique_ptr<Tokenizer> tokenizer;
  if (args.has("--prompt") || !settings.printIds)
    tokenizer = Tokenizer::fromDir(dir);
  if (args.has("--prompt"))
    prompt = tokenizer->encode(args.get("--prompt"));
  return generate(args, settings, engine, prompt, tokenizer.get());
}

} // namespace kiln
