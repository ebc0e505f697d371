//===- Checksum.h - fast 64-bit content checksum --------------------------===//
//
// MLIR-free; shared by the artifact writer and the runtime. Four independent
// 64-bit multiply-mix lanes over 32-byte blocks (several GB/s), then a tail
// and a final avalanche. Not cryptographic: it detects corruption and stale
// files, not tampering.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_SUPPORT_CHECKSUM_H
#define KILN_SUPPORT_CHECKSUM_H

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

namespace kiln {

inline uint64_t checksumMix(uint64_t h, uint64_t v) {
  h ^= v * 0x9e3779b97f4a7c15ull;
  h = (h << 31) | (h >> 33);
  return h * 0xc2b2ae3d27d4eb4full;
}

inline uint64_t checksum64(const void *data, size_t size) {
  const auto *p = static_cast<const unsigned char *>(data);
  uint64_t lanes[4] = {0x243f6a8885a308d3ull, 0x13198a2e03707344ull, 0xa4093822299f31d0ull, 0x082efa98ec4e6c89ull};
  size_t i = 0;
  for (; i + 32 <= size; i += 32)
    for (int l = 0; l < 4; ++l) {
      uint64_t v;
      std::memcpy(&v, p + i + 8 * l, 8);
      lanes[l] = checksumMix(lanes[l], v);
    }
  uint64_t h = size;
  for (uint64_t lane : lanes)
    h = checksumMix(h, lane);
  for (; i < size; ++i)
    h = checksumMix(h, p[i]);
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h;
}

inline std::string checksumHex(uint64_t h) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

} // namespace kiln

#endif
