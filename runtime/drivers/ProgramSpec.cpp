//===- ProgramSpec.cpp - program.json, as every GPU driver reads it -------===//
#include "ProgramSpec.h"

#include "kiln/Support/Error.h"
#include "kiln/Support/File.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>

namespace fs = std::filesystem;

namespace kiln::rt {

ProgramSpec ProgramSpec::read(const std::string &dir, uint64_t weightBytes) {
  ProgramSpec p;
  std::string programPath = (fs::path(dir) / "program.json").string();
  auto bad = [&](const std::string &why) { fail(programPath, why); };
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(readFile(programPath, "missing from the artifact"));
  } catch (const nlohmann::json::exception &e) {
    bad(std::string("is not valid JSON: ") + e.what());
  }
  try {
    if (j.at("program_version").get<int>() != 1)
      bad("program version " + j.at("program_version").dump() + " is newer than this runtime reads (1)");
    for (const auto &b : j.at("buffers")) {
      ProgramSpec::Buffer s{b.at("name").get<std::string>(), b.at("role").get<std::string>(), b.at("bytes").get<uint64_t>(),
                   b.value("file_offset", uint64_t(0))};
      if (s.bytes == 0 || (s.role == "weight" && (s.fileOffset > weightBytes || s.bytes > weightBytes - s.fileOffset)))
        bad("buffer " + s.name + " lies outside weights.bin or is empty");
      p.roles.emplace(s.role, int(p.buffers.size()));
      p.buffers.push_back(std::move(s));
    }
    for (const char *role : {"arena", "input_ids", "position_ids", "logits", "next_id"})
      if (!p.roles.count(role))
        bad(std::string("has no ") + role + " buffer");
    p.entries = j.at("entry_points").get<std::vector<std::string>>();
    for (const auto &[name, g] : j.at("graphs").items()) {
      Graph graph;
      graph.tokens = g.at("tokens").get<int64_t>();
      for (const auto &d : g.at("dispatches")) {
        Dispatch dispatch;
        dispatch.kernel = d.at("kernel").get<int>();
        if (dispatch.kernel < 0 || size_t(dispatch.kernel) >= p.entries.size())
          bad("a dispatch of graph " + name + " names kernel " + std::to_string(dispatch.kernel) + ", which does not exist");
        auto groups = d.at("groups").get<std::vector<uint32_t>>();
        if (groups.size() != 3)
          bad("a dispatch of graph " + name + " has no 3-D grid");
        std::copy(groups.begin(), groups.end(), dispatch.groups);
        for (const auto &b : d.at("bindings")) {
          Binding binding{b.at(0).get<int>(), b.at(1).get<uint64_t>(), b.at(2).get<uint64_t>()};
          if (binding.buffer < 0 || size_t(binding.buffer) >= p.buffers.size() ||
              binding.offset + binding.bytes > p.buffers[size_t(binding.buffer)].bytes)
            bad("a dispatch of graph " + name + " binds outside its buffers");
          dispatch.bindings.push_back(binding);
        }
        auto [it, fresh] = p.bindingCounts.emplace(dispatch.kernel, dispatch.bindings.size());
        if (it->second != dispatch.bindings.size())
          bad("kernel " + p.entries[size_t(dispatch.kernel)] + " is dispatched with different binding counts");
        graph.dispatches.push_back(std::move(dispatch));
      }
      p.graphs[name] = std::move(graph);
    }
  } catch (const nlohmann::json::exception &e) {
    bad(std::string("is not a Kiln GPU program: ") + e.what());
  }
  if (!p.graphs.count("prefill") || !p.graphs.count("decode"))
    bad("lacks the prefill or decode graph");
  return p;
}

} // namespace kiln::rt
