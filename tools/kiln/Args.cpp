//===- Args.cpp - command-line parsing for the kiln driver ----------------===//
#include "Args.h"

#include "kiln/Support/Error.h"

#include <cerrno>
#include <cstdlib>
#include <iostream>

namespace kiln {

Args::Args(std::string command, std::set<std::string> valued, std::set<std::string> flags)
    : command_(std::move(command)), valued_(std::move(valued)), flags_(std::move(flags)) {}

void Args::error(const std::string &message) const { throw Error("kiln " + command_ + ": " + message); }

void Args::parse(int argc, char **argv, int first) {
  for (int i = first; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.size() < 2 || arg[0] != '-') {
      positional_.push_back(arg);
      continue;
    }
    std::string name = arg, value;
    bool inlineValue = false;
    if (size_t eq = arg.find('='); eq != std::string::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      inlineValue = true;
    }
    if (flags_.count(name)) {
      if (inlineValue)
        error("option '" + name + "' takes no value");
      values_[name] = "1";
    } else if (valued_.count(name)) {
      if (!inlineValue) {
        if (i + 1 >= argc)
          error("option '" + name + "' needs a value");
        value = argv[++i];
      }
      values_[name] = value;
    } else {
      error("unknown option '" + name + "' (see kiln " + command_ + " --help)");
    }
  }
}

std::string Args::get(const std::string &name, const std::string &fallback) const {
  auto it = values_.find(name);
  return it == values_.end() ? fallback : it->second;
}

int64_t Args::getInt(const std::string &name, int64_t fallback) const {
  if (!has(name))
    return fallback;
  const std::string &text = values_.at(name);
  char *end = nullptr;
  errno = 0;
  long long v = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno == ERANGE)
    error("option '" + name + "' needs an integer, got '" + text + "'");
  return int64_t(v);
}

double Args::getDouble(const std::string &name, double fallback) const {
  if (!has(name))
    return fallback;
  const std::string &text = values_.at(name);
  char *end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0')
    error("option '" + name + "' needs a number, got '" + text + "'");
  return v;
}

std::string Args::onePositional(const std::string &what) const {
  if (positional_.size() != 1)
    error(positional_.empty() ? "missing " + what : "expected one " + what + ", got " +
                                                        std::to_string(positional_.size()) + " arguments");
  return positional_[0];
}

int reportErrors(const std::function<int()> &command) {
  try {
    return command();
  } catch (const std::bad_alloc &) {
    std::cerr << "error: out of memory\n";
  } catch (const std::exception &e) {
    std::cerr << "error: " << e.what() << "\n";
  }
  return 1;
}

std::vector<int32_t> parseIdList(const std::string &text) {
  std::vector<int32_t> ids;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ',' || text[i] == ' '))
      ++i;
    if (i == text.size())
      break;
    size_t j = i;
    while (j < text.size() && text[j] != ',' && text[j] != ' ')
      ++j;
    std::string item = text.substr(i, j - i);
    char *end = nullptr;
    errno = 0;
    long v = std::strtol(item.c_str(), &end, 10);
    if (*end != '\0' || errno == ERANGE || v < 0 || v > INT32_MAX)
      throw Error("--prompt-ids: '" + item + "' is not a token id");
    ids.push_back(int32_t(v));
    i = j;
  }
  return ids;
}

} // namespace kiln
