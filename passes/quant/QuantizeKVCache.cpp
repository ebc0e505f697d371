//===- QuantizeKVCache.cpp - kiln-quantize-kv-cache -----------------------===//
#include "kiln/Passes/Passes.h"
#include "kiln/Passes/Statistics.h"

namespace kiln {
#define GEN_PASS_DEF_QUANTIZEKVCACHE
#include "kiln/Passes/QuantPasses.h.inc"
} // namespace kiln

using namespace mlir;

namespace kiln {
namespace {

struct QuantizeKVCachePass : impl::QuantizeKVCacheBase<QuantizeKVCachePass> {
  using QuantizeKVCacheBase::QuantizeKVCacheBase;

  void runOnOperation() override {
    auto parsed = symbolizeCacheFormat(format);
    if (!parsed) {
      getOperation().emitError("kiln-quantize-kv-cache: unknown format '") << format << "' (int8, f32)";
      return signalPassFailure();
    }
    uint64_t count = 0;
    // Every update of every cache: the prefill and decode functions share
    // the caches, so they must agree on the format.
    getOperation().walk([&](CacheUpdateOp c) {
      c.setFormat(*parsed);
      ++count;
    });
    numQuantized += count;
    recordStatistic(getArgument().str(), "num-quantized", count);
  }
};

} // namespace
} // namespace kiln
