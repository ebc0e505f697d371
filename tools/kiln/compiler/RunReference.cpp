//===- RunReference.cpp - kiln run --reference ----------------------------===//
#include "../Generate.h"
#include "Commands.h"

#include "kiln/Interpreter/Interpreter.h"
#include "kiln/Support/Error.h"

#include <filesystem>

namespace kiln {

int referenceRunCommand(int argc, char **argv) {
  Args args("run", kRunValuedOptions, kRunFlagOptions);
  args.parse(argc, argv, 2);
  RunSettings settings = parseRunSettings(args);
  std::vector<int32_t> prompt;
  if (args.has("--prompt-ids")) // parsed first: a bad list is reported before any file is read
    prompt = parseIdList(args.get("--prompt-ids"));
  if (!args.positional().empty())
    args.error("unexpected argument '" + args.positional()[0] + "' (--reference names the model)");
  for (const char *opt : {"--kernels", "--device"})
    if (args.has(opt))
      args.error(std::string(opt) + " applies to compiled artifacts, not to --reference");
  std::string path = args.get("--reference");
  ImportOptions options;
  options.ctxLen = args.getInt("--ctx-len", 0);
  options.promptLen = args.getInt("--prompt-len", 0);
  LoadedModel model;
  bool isDir = std::filesystem::is_directory(path);
  // A folder merges --adapter DIR; a .mlir file with switchable adapters selects --adapter NAME.
  if (isDir)
    setAdapterOptions(args, options, false);
  if (!isDir)
    model = loadModel(path, options); // a .mlir file: its shapes are fixed
  std::string dir = isDir ? path : model.checkpointDir;
  std::unique_ptr<Tokenizer> tokenizer;
  if (args.has("--prompt") || !settings.printIds)
    tokenizer = Tokenizer::fromDir(dir);
  if (args.has("--prompt"))
    prompt = tokenizer->encode(args.get("--prompt"));
  if (!model.module) {
    // The reference prefill defaults to exactly the prompt's length: no padding work.
    if (options.promptLen <= 0) {
      auto ckpt = Checkpoint::open(path);
      int64_t ctx = options.ctxLen ? options.ctxLen : ckpt->config().nPositions;
      options.promptLen = std::max<int64_t>(1, std::min<int64_t>(int64_t(prompt.size()), ctx));
    }
    model = loadModel(path, options);
  }
  ReferenceModel ref(*model.module);
  if (!isDir && args.has("--adapter"))
    ref.interpreter().setAdapter(args.get("--adapter"));
  if (settings.threads > 0)
    ref.interpreter().setThreads(unsigned(settings.threads));
  Engine engine;
  engine.contextLen = ref.contextLen();
  engine.vocabSize = ref.vocabSize();
  std::vector<float> last;
  engine.prefill = [&ref, &last](const std::vector<int32_t> &ids) { last = ref.prefill(ids); };
  engine.decode = [&ref, &last](int32_t id) { last = ref.decode(id); };
  engine.logits = [&last] { return last; };
  engine.position = [&ref] { return ref.position(); };
  return generate(args, settings, engine, prompt, tokenizer.get());
}

} // namespace kiln
