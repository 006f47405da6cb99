// Capture ring: filter, copy, drain. Only reached while a capture runs (the engine's off path is
// one atomic load), so clarity wins over speed here; the lock is held for one memcpy.
#include "engine/capture_ring.h"

#include <time.h>

#include <algorithm>
#include <cstring>

#include "base/ip_packet.h"

namespace flannelts {

namespace {

// Two prefixes overlap when the shorter one contains the longer one's network address.
bool Overlaps(const Prefix& a, const Prefix& b) { return a.len <= b.len ? InPrefix(b.addr, a) : InPrefix(a.addr, b); }

void Put32(uint8_t* at, uint32_t v) {
  for (int i = 0; i < 4; i++) at[i] = static_cast<uint8_t>(v >> (8 * i));
}
void Put64(uint8_t* at, uint64_t v) {
  for (int i = 0; i < 8; i++) at[i] = static_cast<uint8_t>(v >> (8 * i));
}

}  // namespace

CaptureRing::CaptureRing(const CaptureFilter& f) : f_(f) {
  buf_.reserve(f_.bufferBytes);
  spare_.reserve(f_.bufferBytes);
}

bool CaptureRing::Wanted(CaptureDir dir, uint8_t reason, const uint8_t* p, size_t len, const CapturePeer& peer) const {
  if (!(dir == CaptureDir::kTx ? f_.tx : f_.rx)) return false;
  if (reason == kNoDropReason ? !f_.traffic : !(reason < 64 && (f_.dropMask >> reason) & 1)) return false;
  if (f_.peers.empty()) return true;
  PacketInfo info{};
  const bool parsed = p && len > 0 && ((info = ClassifyPacket(p, len)).cls == PacketClass::kIPv4 || info.cls == PacketClass::kIPv6);
  for (const Prefix& want : f_.peers) {
    if (peer.outer && InPrefix(*peer.outer, want)) return true;
    if (peer.subnet && Overlaps(*peer.subnet, want)) return true;
    if (parsed && (InPrefix(info.src, want) || InPrefix(info.dst, want))) return true;
  }
  return false;
}

void CaptureRing::Offer(CaptureDir dir, uint8_t reason, const uint8_t* p, size_t len, const CapturePeer& peer) {
  if (!Wanted(dir, reason, p, len, peer)) return;
  const size_t cap = p ? std::min<size_t>(len, f_.snaplen) : 0;
  const size_t total = (kCaptureHeader + cap + 7) & ~size_t{7};
  uint8_t hdr[kCaptureHeader] = {};
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  Put32(hdr, static_cast<uint32_t>(total));
  Put32(hdr + 4, static_cast<uint32_t>(cap));
  Put32(hdr + 8, static_cast<uint32_t>(p ? len : 0));
  hdr[12] = static_cast<uint8_t>(dir);
  hdr[13] = reason;
  if (peer.outer) {
    hdr[14] = peer.outer->family;
    std::memcpy(hdr + 32, peer.outer->bytes, 16);
  }
  if (peer.subnet) {
    hdr[15] = peer.subnet->addr.family;
    hdr[16] = peer.subnet->len;
    std::memcpy(hdr + 48, peer.subnet->addr.bytes, 16);
  }
  Put64(hdr + 24, static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec));
  std::lock_guard<std::mutex> lock(mu_);
  if (f_.maxPackets && recorded_.load(std::memory_order_relaxed) >= f_.maxPackets) return;
  if (buf_.size() + total > f_.bufferBytes) {
    lost_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  const size_t at = buf_.size();
  buf_.resize(at + total);  // within the reserved capacity: no allocation
  std::memcpy(buf_.data() + at, hdr, kCaptureHeader);
  if (cap) std::memcpy(buf_.data() + at + kCaptureHeader, p, cap);
  recorded_.fetch_add(1, std::memory_order_relaxed);
}

void CaptureRing::Drain(const std::function<void(const uint8_t*, size_t)>& fn) {
  std::lock_guard<std::mutex> drain(drainMu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    buf_.swap(spare_);
  }
  fn(spare_.data(), spare_.size());
  spare_.clear();
}

}  // namespace flannelts
