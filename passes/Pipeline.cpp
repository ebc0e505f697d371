//===- Pipeline.cpp - YAML pipelines and pass lists -----------------------===//
#include "kiln/Passes/Pipeline.h"

#include "kiln/Support/Error.h"

#include "mlir/Pass/Pass.h"
#include "mlir/Pass/PassRegistry.h"
#include "llvm/Support/raw_ostream.h"

#include <yaml-cpp/yaml.h>

#include <functional>
#include <sstream>

namespace kiln {

namespace {

/// One pass: its name, its options as MLIR's "k=v k2=v2" text, and where it
/// was written (for errors).
struct Entry {
  std::string name, options, where;
};

std::string locationOf(const std::string &file, const YAML::Mark &mark) {
  return file + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
}

/// Refuses options whose brackets or quotes do not pair up. MLIR 19's option lexer
/// (findChar in PassRegistry.cpp) loops forever on an unclosed '(', '[', '{' or quote in a
/// list option ("sizes=2,(4" hung `kiln compile`: found by the passes fuzz target), and an
/// unclosed '{' would also make the assembled pipeline text differ from the checked entry.
void checkBalanced(const Entry &e) {
  std::string open; // the closers still expected, innermost last
  for (size_t i = 0; i < e.options.size(); ++i) {
    char c = e.options[i];
    if (c == '"' || c == '\'') {
      size_t end = e.options.find(c, i + 1);
      if (end == std::string::npos)
        throw Error(e.where + ": unclosed " + std::string(1, c) + " in options '" + e.options + "'");
      i = end;
    } else if (c == '{' || c == '(' || c == '[') {
      open += c == '{' ? '}' : c == '(' ? ')' : ']';
    } else if (c == '}' || c == ')' || c == ']') {
      if (open.empty() || open.back() != c)
        throw Error(e.where + ": unmatched '" + std::string(1, c) + "' in options '" + e.options + "'");
      open.pop_back();
    }
  }
  if (!open.empty())
    throw Error(e.where + ": '" + std::string(1, open.back()) + "' missing in options '" + e.options + "'");
}

/// Resolves each entry through MLIR's pass registry (so unknown passes and
/// bad options are caught here, with a location) and assembles the text,
/// grouping consecutive function passes under func.func(...).
std::string assemble(const std::vector<Entry> &entries) {
  std::string text, funcGroup;
  auto flush = [&] {
    if (!funcGroup.empty())
      text += std::string(text.empty() ? "" : ",") + "func.func(" + funcGroup + ")";
    funcGroup.clear();
  };
  for (const Entry &e : entries) {
    const mlir::PassInfo *info = mlir::PassInfo::lookup(e.name);
    if (!info) {
      if (mlir::PassPipelineInfo::lookup(e.name))
        throw Error(e.where + ": '" + e.name + "' is a named pipeline; list its passes instead");
      throw Error(e.where + ": unknown pass '" + e.name + "' (kiln-opt --help lists the registered passes)");
    }
    checkBalanced(e);
    mlir::OpPassManager probe(mlir::OpPassManager::Nesting::Explicit);
    std::string problem;
    if (failed(info->addToPipeline(probe, e.options, [&](const llvm::Twine &msg) {
          problem = msg.str();
          return mlir::failure();
        })))
      throw Error(e.where + ": pass '" + e.name + "': " +
                  (problem.empty() ? "invalid options '" + e.options + "' (kiln-opt --help lists each pass's options)"
                                   : problem));
    std::optional<llvm::StringRef> anchor = probe.getPasses().begin()->getOpName();
    std::string spelled = e.name + (e.options.empty() ? "" : "{" + e.options + "}");
    // The entry as the assembled text will spell it must parse back alone: MLIR's pipeline
    // lexer pairs braces and quotes differently from its option lexer (found by fuzzing).
    mlir::OpPassManager alone(anchor ? *anchor : llvm::StringRef("builtin.module"));
    std::string errors;
    llvm::raw_string_ostream errorStream(errors);
    if (failed(mlir::parsePassPipeline(spelled, alone, errorStream)))
      throw Error(e.where + ": pass '" + e.name + "': options '" + e.options +
                  "' do not survive MLIR's pipeline syntax (a brace or quote inside a value?)");
    if (anchor && *anchor == "func.func") {
      funcGroup += std::string(funcGroup.empty() ? "" : ",") + spelled;
    } else {
      flush();
      text += std::string(text.empty() ? "" : ",") + spelled;
    }
  }
  flush();
  return text;
}

std::string scalarText(const YAML::Node &n, const std::string &file) {
  if (!n.IsScalar())
    throw Error(locationOf(file, n.Mark()) + ": expected a single value");
  return n.Scalar();
}

} // namespace

Pipeline parsePipelineYaml(const std::string &yaml, const std::string &file) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::ParserException &e) {
    throw Error(locationOf(file, e.mark) + ": malformed YAML: " + e.msg);
  }
  if (!root.IsMap())
    throw Error(file + ":1:1: a pipeline is a map with a 'passes' list");
  Pipeline p;
  p.source = yaml;
  std::vector<Entry> entries;
  bool sawPasses = false;
  for (auto it = root.begin(); it != root.end(); ++it) {
    std::string key = it->first.Scalar();
    YAML::Node value = it->second; // a copy: it-> points into a temporary
    if (key == "description" || key == "name") {
      continue;
    } else if (key == "target") {
      p.target = scalarText(value, file);
    } else if (key == "passes") {
      sawPasses = true;
      if (!value.IsSequence())
        throw Error(locationOf(file, value.Mark()) + ": 'passes' must be a list");
      for (const YAML::Node &item : value) {
        Entry e;
        e.where = locationOf(file, item.Mark());
        if (item.IsScalar()) {
          e.name = item.Scalar();
        } else if (item.IsMap()) {
          for (auto f = item.begin(); f != item.end(); ++f) {
            std::string field = f->first.Scalar();
            if (field == "name") {
              e.name = scalarText(f->second, file);
            } else if (field == "options") {
              YAML::Node options = f->second; // copies: `->` points into a temporary
              if (!options.IsMap())
                throw Error(locationOf(file, options.Mark()) + ": 'options' must be a map of option: value");
              for (auto o = options.begin(); o != options.end(); ++o) {
                YAML::Node optionValue = o->second;
                std::string v = optionValue.IsSequence() ? "" : scalarText(optionValue, file);
                if (optionValue.IsSequence())
                  for (const YAML::Node &x : optionValue)
                    v += (v.empty() ? "" : ",") + scalarText(x, file);
                e.options += (e.options.empty() ? "" : " ") + o->first.Scalar() + "=" + v;
              }
            } else {
              throw Error(locationOf(file, f->first.Mark()) + ": unknown field '" + field +
                          "' (a pass has 'name' and 'options')");
            }
          }
          if (e.name.empty())
            throw Error(e.where + ": pass entry without a 'name'");
        } else {
          throw Error(e.where + ": a pass is a name or a map with 'name' and 'options'");
        }
        entries.push_back(std::move(e));
      }
    } else {
      throw Error(locationOf(file, it->first.Mark()) + ": unknown key '" + key +
                  "' (expected description, target, passes)");
    }
  }
  if (!sawPasses)
    throw Error(file + ":1:1: the pipeline has no 'passes' list");
  p.text = assemble(entries);
  return p;
}

Pipeline parsePassList(const std::string &list) {
  std::vector<Entry> entries;
  size_t i = 0;
  while (i < list.size()) {
    size_t end = i;
    int depth = 0;
    while (end < list.size() && (depth > 0 || list[end] != ',')) {
      depth += list[end] == '{' ? 1 : list[end] == '}' ? -1 : 0;
      ++end;
    }
    std::string item = list.substr(i, end - i);
    item.erase(0, item.find_first_not_of(' '));
    item.erase(item.find_last_not_of(' ') + 1);
    if (!item.empty()) {
      Entry e;
      e.where = "--passes '" + item + "'";
      size_t brace = item.find('{');
      e.name = item.substr(0, brace);
      if (brace != std::string::npos) {
        if (item.back() != '}')
          throw Error(e.where + ": options must be written {name=value ...}");
        e.options = item.substr(brace + 1, item.size() - brace - 2);
      }
      entries.push_back(std::move(e));
    }
    i = end + 1;
  }
  Pipeline p;
  p.source = list;
  p.text = assemble(entries);
  return p;
}

void addPipeline(mlir::OpPassManager &pm, const Pipeline &pipeline) {
  if (pipeline.text.empty())
    return;
  std::string errors;
  llvm::raw_string_ostream os(errors);
  if (failed(mlir::parsePassPipeline(pipeline.text, pm, os)))
    throw Error("invalid pass pipeline '" + pipeline.text + "': " + os.str());
}

} // namespace kiln
