//===- ProgramSpec.h - program.json, as every GPU driver reads it ---------===//
//
// MLIR-free; the reader of what backends/gpu/Schedule.cpp writes (docs/artifact.md): the
// buffer table, the kernels' entry points and each graph's dispatches, every index and
// range checked, so a driver never binds outside a buffer.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_RUNTIME_DRIVERS_PROGRAMSPEC_H
#define KILN_RUNTIME_DRIVERS_PROGRAMSPEC_H

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace kiln::rt {

struct ProgramSpec {
  struct Buffer {
    std::string name, role;
    uint64_t bytes = 0, fileOffset = 0;
  };
  struct Binding {
    int buffer = 0;
    uint64_t offset = 0, bytes = 0;
  };
  struct Dispatch {
    int kernel = 0;
    std::vector<Binding> bindings;
    uint32_t groups[3] = {1, 1, 1};
  };
  struct Graph {
    int64_t tokens = 0;
    std::vector<Dispatch> dispatches;
  };
  std::vector<Buffer> buffers;
  std::multimap<std::string, int> roles; ///< role -> buffer index
  std::vector<std::string> entries;     ///< kernel entry points
  std::map<int, size_t> bindingCounts;  ///< kernel -> its number of bindings
  std::map<std::string, Graph> graphs;  ///< prefill, decode

  /// Reads `dir`/program.json, checking buffers against `weightBytes` of weights.bin;
  /// throws kiln::Error naming the file.
  static ProgramSpec read(const std::string &dir, uint64_t weightBytes);
  /// The buffer of a role every program has (arena, input_ids, logits, next_id, ...).
  int buffer(const std::string &role) const { return roles.find(role)->second; }
};

} // namespace kiln::rt

#endif
