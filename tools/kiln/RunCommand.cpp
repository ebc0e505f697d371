//===- RunCommand.cpp - kiln run ARTIFACT (MLIR-free) ---------------------===//
#include "Driver.h"
#include "Generate.h"
#include "OrtSession.h"

#include "kiln/Runtime/Runtime.h"

#include <iostream>

namespace kiln {

namespace {
/// An onnx artifact: the same loop, the logits from ONNX Runtime.
int runOnnx(const Args &args, const RunSettings &settings, std::vector<int32_t> prompt) {
  std::string dir = args.onePositional("ARTIFACT_DIR");
  if (args.has("--kernels"))
    args.error("--kernels chooses cpu kernels; " + dir + " is an onnx artifact (run in ONNX Runtime)");
  std::unique_ptr<Tokenizer> tokenizer;
  if (args.has("--prompt") || !settings.printIds)
    tokenizer = Tokenizer::fromDir(dir);
  if (args.has("--prompt"))
    prompt = tokenizer->encode(args.get("--prompt"));
  OrtSession session(dir, int(settings.threads));
  Engine engine;
  engine.contextLen = session.contextLength();
  engine.vocabSize = session.vocabSize();
  engine.prefill = [&session](const std::vector<int32_t> &ids) { return session.append(ids); };
  engine.decode = [&session](int32_t id) { return session.append({id}); };
  engine.position = [&session] { return session.position(); };
  return generate(args, settings, engine, prompt, tokenizer.get());
}
} // namespace

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
  if (isOnnxArtifact(args.onePositional("ARTIFACT_DIR")))
    return runOnnx(args, settings, prompt);
  rt::Artifact::Options open;
  open.kernels = args.get("--kernels", "auto");
  auto artifact = rt::Artifact::open(args.onePositional("ARTIFACT_DIR"), open);
  rt::Session session(*artifact, int(settings.threads));
  std::unique_ptr<Tokenizer> tokenizer;
  if (args.has("--prompt") || !settings.printIds)
    tokenizer = Tokenizer::fromDir(artifact->dir());
  if (args.has("--prompt"))
    prompt = tokenizer->encode(args.get("--prompt"));

  Engine engine;
  engine.contextLen = artifact->contextLength();
  engine.vocabSize = artifact->vocabSize();
  int64_t vocab = engine.vocabSize;
  engine.prefill = [&session, vocab](const std::vector<int32_t> &ids) {
    const float *l = session.prefill(ids.data(), ids.size());
    return std::vector<float>(l, l + vocab);
  };
  engine.decode = [&session, vocab](int32_t id) {
    const float *l = session.decode(id);
    return std::vector<float>(l, l + vocab);
  };
  engine.position = [&session] { return session.position(); };
  return generate(args, settings, engine, prompt, tokenizer.get());
}

} // namespace kiln
