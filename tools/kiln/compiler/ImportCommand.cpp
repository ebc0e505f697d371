//===- ImportCommand.cpp - kiln import ------------------------------------===//
#include "../Args.h"
#include "Commands.h"

#include "kiln/Support/Error.h"

#include "mlir/IR/AsmState.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/raw_ostream.h"

#include <iostream>

namespace kiln {

int importCommand(int argc, char **argv) {
  Args args("import", {"-o", "--prompt-len", "--ctx-len"}, {"--all-logits", "--help"});
  args.parse(argc, argv, 2);
  if (args.has("--help")) {
    std::cout << "usage: kiln import MODEL_DIR [-o FILE.mlir] [--prompt-len N] [--ctx-len N] [--all-logits]\n"
                 "Imports a Hugging Face GPT-2 folder into kiln IR (weights referenced, not inlined).\n";
    return 0;
  }
  ImportOptions options;
  options.promptLen = args.getInt("--prompt-len", 0);
  options.ctxLen = args.getInt("--ctx-len", 0);
  options.allLogits = args.has("--all-logits");
  LoadedModel model = loadModel(args.onePositional("MODEL_DIR"), options);
  std::string out = args.get("-o", "-");
  std::error_code ec;
  llvm::raw_fd_ostream os(out, ec, llvm::sys::fs::OF_Text);
  if (ec)
    fail(out, "cannot open for writing: " + ec.message());
  model.module->print(os);
  os << "\n";
  return 0;
}

} // namespace kiln
