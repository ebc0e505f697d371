//===- MakeCheckpointCommand.cpp - kiln make-checkpoint -------------------===//
#include "Args.h"
#include "Driver.h"

#include "kiln/Frontend/Checkpoint.h"
#include "kiln/Support/Error.h"

#include <filesystem>
#include <iostream>

namespace kiln {

int makeCheckpointCommand(int argc, char **argv) {
  Args args("make-checkpoint",
            {"--preset", "--seed", "-o", "--dtype", "--n-layer", "--n-embd", "--n-head", "--n-inner", "--vocab-size",
             "--n-positions", "--activation", "--shards", "--tokenizer-from"},
            {"--untied", "--prefixed", "--no-tokenizer", "--help"});
  args.parse(argc, argv, 2);
  if (args.has("--help")) {
    std::cout << "usage: kiln make-checkpoint --preset tiny|gpt2|gpt2-medium --seed N -o DIR\n"
                 "         [--dtype f32|f16|bf16] [--n-layer N] [--n-embd N] [--n-head N] [--n-inner N]\n"
                 "         [--vocab-size N] [--n-positions N] [--activation NAME] [--untied] [--prefixed]\n"
                 "         [--shards N] [--tokenizer-from DIR | --no-tokenizer]\n"
                 "Writes a random-weight Hugging Face GPT-2 checkpoint (config.json, safetensors, tokenizer).\n";
    return 0;
  }
  if (!args.positional().empty())
    args.error("unexpected argument '" + args.positional()[0] + "'");
  if (!args.has("-o"))
    args.error("missing -o DIR");
  CheckpointSpec spec;
  spec.config = presetConfig(args.get("--preset", "tiny"));
  GPT2Config &c = spec.config;
  c.nLayer = args.getInt("--n-layer", c.nLayer);
  c.nEmbd = args.getInt("--n-embd", c.nEmbd);
  c.nHead = args.getInt("--n-head", c.nHead);
  c.nInner = args.getInt("--n-inner", 0);
  c.vocabSize = args.getInt("--vocab-size", c.vocabSize);
  c.nPositions = args.getInt("--n-positions", c.nPositions);
  c.activation = args.get("--activation", c.activation);
  c.tieWordEmbeddings = !args.has("--untied");
  std::string dtype = args.get("--dtype", "f32");
  if (dtype == "f32")
    spec.dtype = DType::F32;
  else if (dtype == "f16")
    spec.dtype = DType::F16;
  else if (dtype == "bf16")
    spec.dtype = DType::BF16;
  else
    args.error("--dtype must be f32, f16 or bf16, got '" + dtype + "'");
  int64_t seed = args.getInt("--seed", 0);
  if (seed < 0)
    args.error("--seed must be >= 0");
  spec.seed = uint64_t(seed);
  spec.prefixed = args.has("--prefixed");
  spec.shards = int(args.getInt("--shards", 1));
  if (!args.has("--no-tokenizer")) {
    // The installed tokenizer files, else the source tree's shipped model.
    std::error_code ec;
    auto installed = std::filesystem::read_symlink("/proc/self/exe", ec).parent_path().parent_path() / "share" /
                     "kiln" / "gpt2-tokenizer";
    spec.tokenizerDir = args.get("--tokenizer-from", std::filesystem::exists(installed / "vocab.json")
                                                         ? installed.string()
                                                         : std::string(KILN_DEFAULT_MODEL_DIR));
  }
  writeRandomCheckpoint(spec, args.get("-o"));
  std::cerr << "wrote " << args.get("-o") << "\n";
  return 0;
}

} // namespace kiln
