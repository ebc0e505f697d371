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
  std::vector<float> last; // the ORT engine's last logits
  if (isOnnxArtifact(dir)) {
    for (const char *opt : {"--kernels", "--device"})
      if (args.has(opt))
        args.error(std::string(opt) + " does not apply to " + dir + ", an onnx artifact (run in ONNX Runtime)");
    ort = std::make_unique<OrtSession>(dir, int(settings.threads));
    if (args.has("--adapter"))
      ort->setAdapter(args.get("--adapter"));
    engine.contextLen = ort->contextLength();
    engine.vocabSize = ort->vocabSize();
    engine.prefill = [&ort, &last](const std::vector<int32_t> &ids) { last = ort->append(ids); };
    engine.decode = [&ort, &last](int32_t id) { last = ort->append({id}); };
    engine.logits = [&last] { return last; };
    engine.position = [&ort] { return ort->position(); };
  } else {
    rt::Artifact::Options open;
    open.kernels = args.get("--kernels", "auto");
    open.device = int(args.getInt("--device", 0));
    if (open.device < 0)
      args.error("--device must be >= 0");
    artifact = rt::Artifact::open(dir, open);
    if (artifact->target() != "cpu" && args.has("--kernels"))
      args.error("--kernels chooses cpu kernels; " + dir + " is a " + artifact->target() + " artifact");
    if (artifact->target() == "cpu" && args.has("--device"))
      args.error("--device chooses a GPU; " + dir + " is a cpu artifact");
    session = std::make_unique<rt::Session>(*artifact, int(settings.threads));
    if (args.has("--adapter"))
      session->setAdapter(args.get("--adapter"));
    engine.contextLen = artifact->contextLength();
    engine.vocabSize = artifact->vocabSize();
    int64_t vocab = engine.vocabSize;
    engine.prefill = [&session](const std::vector<int32_t> &ids) { session->feedPrompt(ids.data(), ids.size()); };
    engine.decode = [&session](int32_t id) { session->feedToken(id); };
    engine.logits = [&session, vocab] {
      const float *l = session->logits();
      return std::vector<float>(l, l + vocab);
    };
    if (artifact->target() != "cpu")
      engine.greedy = [&session] { return session->greedy(); };
    engine.position = [&session] { return session->position(); };
    if (settings.stats)
      std::cerr << "device: " << artifact->device() << "\n";
  }
  std::unique_ptr<Tokenizer> tokenizer;
  if (args.has("--prompt") || !settings.printIds)
    tokenizer = Tokenizer::fromDir(dir);
  if (args.has("--prompt"))
    prompt = tokenizer->encode(args.get("--prompt"));
  return generate(args, settings, engine, prompt, tokenizer.get());
}

} // namespace kiln
