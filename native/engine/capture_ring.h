#pragma once
// The engine's capture tap (`flannelctl capture`): worker threads offer packets (sent, received, or
// dropped with a reason); those that match the filter are copied, truncated to the snaplen, into a
// bounded buffer that JavaScript drains by polling. Nothing here calls into JavaScript and nothing
// blocks a worker for longer than one memcpy under a mutex; a full buffer counts `lost` instead.
// While no capture runs the engine holds no CaptureRing at all (see Engine::capture_).
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <vector>

#include "base/ipaddr.h"

namespace flannelts {

enum class CaptureDir : uint8_t { kTx = 0, kRx = 1 };
constexpr uint8_t kNoDropReason = 0xff;

struct CaptureFilter {
  bool tx = true, rx = true;   // which side of the engine (drops are on one side too)
  bool traffic = true;         // packets sent to / received from a peer
  uint64_t dropMask = ~0ull;   // drop reasons to record (bit = Drop value); 0 = none
  std::vector<Prefix> peers;   // empty = any; else the outer peer address, the peer subnet or an inner address must fall in one
  uint32_t snaplen = 65535;
  uint64_t maxPackets = 0;     // stop recording after this many; 0 = no limit
  size_t bufferBytes = 4u << 20;
};

// Record layout handed to JavaScript (little-endian, parsed in src/capture/records.ts):
//   u32 recordBytes (header + data, padded to 8) | u32 capturedLen | u32 originalLen
//   u8 dir | u8 reason (kNoDropReason: not a drop) | u8 peerFamily | u8 subnetFamily
//   u8 subnetLen | 7 pad | u64 realtime ns | 16 peer address | 16 subnet address | data
constexpr size_t kCaptureHeader = 64;

// What a worker knows about the packet's peer: its public address, and its subnet when routed.
struct CapturePeer {
  const IpAddr* outer = nullptr;
  const Prefix* subnet = nullptr;
};

class CaptureRing {
 public:
  explicit CaptureRing(const CaptureFilter& f);

  // Worker threads. p may be null (nothing to copy, e.g. a failed read); reason kNoDropReason for traffic.
  void Offer(CaptureDir dir, uint8_t reason, const uint8_t* p, size_t len, const CapturePeer& peer);

  // JavaScript thread: hands the records gathered since the last call to fn, then forgets them.
  void Drain(const std::function<void(const uint8_t*, size_t)>& fn);

  uint64_t recorded() const { return recorded_.load(std::memory_order_relaxed); }
  uint64_t lost() const { return lost_.load(std::memory_order_relaxed); }

 private:
  bool Wanted(CaptureDir dir, uint8_t reason, const uint8_t* p, size_t len, const CapturePeer& peer) const;

  const CaptureFilter f_;
  std::mutex mu_;
  // Filled by workers up to bufferBytes (reserved, so appending never reallocates under the lock);
  // Drain swaps it with spare_ and reads the full one outside the lock.
  std::vector<uint8_t> buf_, spare_;
  std::mutex drainMu_;
  std::atomic<uint64_t> recorded_{0}, lost_{0};
};

}  // namespace flannelts
