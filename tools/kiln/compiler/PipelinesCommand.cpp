//===- PipelinesCommand.cpp - kiln pipelines ------------------------------===//
//
// Lists the shipped pipelines --pipeline NAME accepts, with each file's
// description (and with --json its path, for tools such as the Python package).
//
//===----------------------------------------------------------------------===//
#include "../Args.h"
#include "Commands.h"

#include "kiln/Support/Error.h"

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include <cstdio>
#include <iostream>

namespace kiln {

int pipelinesCommand(int argc, char **argv) {
  Args args("pipelines", {}, {"--json", "--help"});
  args.parse(argc, argv, 2);
  if (args.has("--help")) {
    std::cout << "usage: kiln pipelines [--json]\n"
                 "Lists the shipped pipelines (kiln compile/eval --pipeline NAME) with their descriptions.\n";
    return 0;
  }
  if (!args.positional().empty())
    args.error("unexpected argument '" + args.positional()[0] + "'");
  nlohmann::ordered_json all = nlohmann::ordered_json::array();
  for (const std::string &name : shippedPipelines()) {
    std::string path = resolvePipelineFile(name), description;
    try {
      YAML::Node root = YAML::LoadFile(path);
      if (root.IsMap() && root["description"])
        description = root["description"].as<std::string>();
    } catch (const YAML::Exception &e) {
      fail(path, std::string("invalid pipeline: ") + e.what());
    }
    all.push_back({{"name", name}, {"description", description}, {"path", path}});
  }
  if (args.has("--json")) {
    std::cout << all.dump() << "\n";
    return 0;
  }
  for (const auto &p : all)
    std::printf("%-18s %s\n", p["name"].get<std::string>().c_str(), p["description"].get<std::string>().c_str());
  return 0;
}

} // namespace kiln
