//===- KilnDialect.td - the kiln dialect ---------------------*- tablegen -*-===//
#ifndef KILN_DIALECT_TD
#define KILN_DIALECT_TD

include "mlir/IR/OpBase.td"

def Kiln_Dialect : Dialect {
  let name = "kiln";
  let cppNamespace = "::kiln";
  let summary = "Transformer building blocks for ahead-of-time compilation";
  let description = [{
    The kiln dialect describes a decoder-only transformer (GPT-2 first) at the
    level of its building blocks: embeddings, layer norms, linear layers,
    attention pieces and the LM head. Values are ranked, statically shaped
    builtin tensors. Weights are not inlined: `kiln.global` declares an entry
    of the module's weight table (backed by the mmapped checkpoint named by
    the module attribute `kiln.checkpoint`) and `kiln.weight` reads it.
  }];
  let usePropertiesForAttributes = 1;
}

class Kiln_Op<string mnemonic, list<Trait> traits = []>
    : Op<Kiln_Dialect, mnemonic, traits>;

#endif // KILN_DIALECT_TD
