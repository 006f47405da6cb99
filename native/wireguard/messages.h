#pragma once
// WireGuard's four message formats (the paper, section 5.4; wireguard-go device/noise-protocol.go):
// sizes, field offsets, little-endian helpers, the TAI64N timestamp and the UDP endpoint a message
// came from or goes to.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "crypto.h"

namespace flannelts {
namespace wg {

enum MessageType : uint32_t { kInitiation = 1, kResponse = 2, kCookieReply = 3, kTransport = 4 };

constexpr size_t kInitiationSize = 148;
constexpr size_t kResponseSize = 92;
constexpr size_t kCookieReplySize = 64;
constexpr size_t kTransportHeader = 16;                  // type, receiver index, counter
constexpr size_t kTransportMin = kTransportHeader + kTagLen;  // a keepalive
constexpr size_t kPaddingMultiple = 16;
constexpr size_t kTimestampLen = 12;
constexpr size_t kXNonceLen = 24;  // XChaCha20-Poly1305, cookie replies only

// Initiation: type(4) sender(4) ephemeral(32) static(32+16) timestamp(12+16) mac1(16) mac2(16)
constexpr size_t kInitSender = 4, kInitEphemeral = 8, kInitStatic = 40, kInitTimestamp = 88, kInitMac1 = 116, kInitMac2 = 132;
// Response: type(4) sender(4) receiver(4) ephemeral(32) empty(0+16) mac1(16) mac2(16)
constexpr size_t kRespSender = 4, kRespReceiver = 8, kRespEphemeral = 12, kRespEmpty = 44, kRespMac1 = 60, kRespMac2 = 76;
// Cookie reply: type(4) receiver(4) nonce(24) cookie(16+16)
constexpr size_t kCookieReceiver = 4, kCookieNonce = 8, kCookieSealed = 32;
// Transport: type(4) receiver(4) counter(8) packet(n+16)
constexpr size_t kDataReceiver = 4, kDataCounter = 8;

inline uint32_t Le32(const uint8_t* p) { return p[0] | p[1] << 8 | p[2] << 16 | static_cast<uint32_t>(p[3]) << 24; }
inline void PutLe32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline uint64_t Le64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
  return v;
}
inline void PutLe64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

// TAI64N of a wall-clock time, with the nanoseconds rounded down to 2^24 ns as wireguard-go does so
// that a timestamp leaks no precise clock. Compared as bytes: later is larger.
inline void Tai64n(int64_t wallNs, uint8_t out[kTimestampLen]) {
  const uint64_t secs = 0x400000000000000aULL + static_cast<uint64_t>(wallNs / 1000000000);
  const uint32_t nanos = static_cast<uint32_t>(wallNs % 1000000000) & ~uint32_t(0xffffff);
  for (int i = 0; i < 8; i++) out[i] = static_cast<uint8_t>(secs >> (8 * (7 - i)));
  for (int i = 0; i < 4; i++) out[8 + i] = static_cast<uint8_t>(nanos >> (8 * (3 - i)));
}

// A UDP peer address. family 0 = none (a peer without an endpoint cannot be sent to).
struct Endpoint {
  uint8_t family = 0;  // 4 or 6
  uint8_t addr[16] = {};
  uint16_t port = 0;

  bool operator==(const Endpoint& o) const {
    return family == o.family && port == o.port && std::memcmp(addr, o.addr, family == 4 ? 4 : 16) == 0;
  }
  bool operator!=(const Endpoint& o) const { return !(*this == o); }
  // What a cookie is bound to: the address bytes then the port, little-endian (as wireguard-go's
  // AddrPort.MarshalBinary). Only we read our cookies back, so this only has to be stable.
  size_t Bytes(uint8_t out[18]) const {
    const size_t n = family == 4 ? 4 : 16;
    std::memcpy(out, addr, n);
    out[n] = static_cast<uint8_t>(port);
    out[n + 1] = static_cast<uint8_t>(port >> 8);
    return n + 2;
  }
};

}  // namespace wg
}  // namespace flannelts
