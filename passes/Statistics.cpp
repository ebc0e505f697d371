//===- Statistics.cpp - pass statistics that work in release LLVM builds --===//
#include "kiln/Passes/Statistics.h"

#include <mutex>
#include <vector>

namespace kiln {
namespace {
struct Entry {
  std::string pass, name;
  uint64_t value;
};
std::mutex mutex;
std::vector<Entry> &entries() {
  static std::vector<Entry> e;
  return e;
}
} // namespace

void recordStatistic(const std::string &pass, const std::string &name, uint64_t value) {
  std::lock_guard<std::mutex> lock(mutex);
  for (Entry &e : entries())
    if (e.pass == pass && e.name == name) {
      e.value += value;
      return;
    }
  entries().push_back({pass, name, value});
}

std::string statisticsReport() {
  std::lock_guard<std::mutex> lock(mutex);
  std::string out;
  for (const Entry &e : entries())
    out += e.pass + ": " + e.name + " = " + std::to_string(e.value) + "\n";
  return out;
}
} // namespace kiln
