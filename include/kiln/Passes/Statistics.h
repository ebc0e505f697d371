//===- Statistics.h - pass statistics that work in release LLVM builds ----===//
//
// MLIR's Pass::Statistic is a no-op unless LLVM was built with statistics
// (Debian's is not), so kiln passes also record their counts here and
// `kiln compile --pass-statistics` prints this report.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_PASSES_STATISTICS_H
#define KILN_PASSES_STATISTICS_H

#include <cstdint>
#include <string>

namespace kiln {
/// Adds `value` to statistic `name` of pass `pass`.
void recordStatistic(const std::string &pass, const std::string &name, uint64_t value);
/// "pass: name = value" lines, in the order first recorded.
std::string statisticsReport();
} // namespace kiln

#endif
