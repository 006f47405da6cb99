#pragma once
// The anti-replay window of RFC 6479 with wireguard-go's geometry (replay/replay.go): a ring of 128
// 64-bit blocks, of which 127 are the window, so 8128 counters behind the newest are remembered.
// Not thread-safe: a keypair's receive path serialises it (Keypair holds a lock for it).
#include <cstdint>

namespace flannelts {
namespace wg {

class ReplayFilter {
 public:
  static constexpr unsigned kBlockBits = 64;
  static constexpr unsigned kRingBlocks = 128;
  static constexpr uint64_t kWindow = (kRingBlocks - 1) * kBlockBits;  // 8128

  void Reset() {
    last_ = 0;
    ring_[0] = 0;
  }
  // True (and remembered) the first time a counter below `limit` is seen inside the window; false
  // for a duplicate, a counter older than the window, or one at/over the limit.
  bool Validate(uint64_t counter, uint64_t limit) {
    if (counter >= limit) return false;
    uint64_t block = counter / kBlockBits;
    if (counter > last_) {
      const uint64_t current = last_ / kBlockBits;
      uint64_t diff = block - current;
      if (diff > kRingBlocks) diff = kRingBlocks;  // jumped past the whole ring: clear it all
      for (uint64_t i = current + 1; i <= current + diff; i++) ring_[i % kRingBlocks] = 0;
      last_ = counter;
    } else if (last_ - counter > kWindow) {
      return false;
    }
    block %= kRingBlocks;
    const uint64_t bit = uint64_t(1) << (counter % kBlockBits);
    const uint64_t old = ring_[block];
    ring_[block] = old | bit;
    return (old & bit) == 0;
  }

 private:
  uint64_t last_ = 0;
  uint64_t ring_[kRingBlocks] = {};
};

}  // namespace wg
}  // namespace flannelts
