//===- Args.h - command-line parsing for the kiln driver ------------------===//
//
// Each subcommand declares its options; anything else is an error that names
// the option. `--name value` and `--name=value` are both accepted.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_TOOLS_ARGS_H
#define KILN_TOOLS_ARGS_H

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace kiln {

class Args {
public:
  /// `valued`: options that take a value; `flags`: options that do not.
  Args(std::string command, std::set<std::string> valued, std::set<std::string> flags);

  /// Throws kiln::Error("kiln <command>: ...") on unknown options or missing values.
  void parse(int argc, char **argv, int first);

  bool has(const std::string &name) const { return values_.count(name) != 0; }
  std::string get(const std::string &name, const std::string &fallback = "") const;
  int64_t getInt(const std::string &name, int64_t fallback) const;
  double getDouble(const std::string &name, double fallback) const;
  const std::vector<std::string> &positional() const { return positional_; }
  /// The single positional argument, or an error naming `what`.
  std::string onePositional(const std::string &what) const;
  [[noreturn]] void error(const std::string &message) const;

private:
  std::string command_;
  std::set<std::string> valued_, flags_;
  std::map<std::string, std::string> values_;
  std::vector<std::string> positional_;
};

/// Runs a command, printing any exception as one "error: ..." line (exit 1).
int reportErrors(const std::function<int()> &command);

/// Parses "1,2,3" (or space separated) into ids.
std::vector<int32_t> parseIdList(const std::string &text);

} // namespace kiln

#endif
