#pragma once
// Inner IP packets over byte spans: classification, TTL/hop-limit decrement, ICMP unreachable.
// Nothing here allocates or touches a file descriptor, so the unit tests call them directly; malformed
// input can cost a counter, never a crash.
#include <cstddef>
#include <cstdint>

#include "base/ipaddr.h"

namespace flannelts {

constexpr size_t kIpv4MinHdr = 20, kIpv6Hdr = 40;
// Room for any inner packet a 64 KiB-MTU TUN can hand us (and any UDP payload).
constexpr size_t kMaxPacket = 65536;
constexpr uint8_t kProtoIcmp = 1, kProtoTcp = 6, kProtoUdp = 17, kProtoIcmpV6 = 58;
constexpr uint8_t kTcpFin = 0x01, kTcpPsh = 0x08, kTcpAck = 0x10, kTcpCwr = 0x80;

enum class PacketClass : uint8_t {
  kIPv4,
  kIPv6,
  kTruncated,       // shorter than the fixed header (or than IHL says)
  kBadVersion,      // version nibble neither 4 nor 6
  kBadIHL,          // IPv4 IHL < 5
  kLengthMismatch,  // total length / payload length disagrees with the datagram
};

const char* PacketClassName(PacketClass c);

struct PacketInfo {
  PacketClass cls;
  size_t length;  // inner packet length from its header (<= datagram length); 0 when malformed
  IpAddr src;
  IpAddr dst;
};

// Validates the header and extracts addresses. Never reads past n.
PacketInfo ClassifyPacket(const uint8_t* p, size_t n);

enum class TtlResult : uint8_t { kOk, kExpired };

// Decrements IPv4 TTL with an incremental header checksum update (RFC 1624, as flannel's proxy.c
// decrement_ttl does) or the IPv6 hop limit (no checksum). The packet must already be classified.
// kExpired when the result would be 0: the packet must be dropped (the header is left untouched).
TtlResult DecrementTtl(uint8_t* p, size_t n, PacketClass cls);

// Maximum size of an ICMP error this module builds (IPv6 minimum MTU).
constexpr size_t kIcmpMaxLen = 1280;

// Builds ICMPv4 destination-unreachable (type 3, code 0 net unreachable) or ICMPv6
// destination-unreachable (type 1, code 0 no route) addressed back to the offender's source, from the
// offender's destination. v4 payload: offender IP header + 8 bytes; v6: as much as fits in 1280 bytes.
// Returns the length written into out (cap >= kIcmpMaxLen), or 0 when no error must be sent (the
// offender is itself an ICMP error, or its source is unspecified/multicast).
size_t BuildIcmpUnreachable(const uint8_t* p, size_t n, PacketClass cls, uint8_t* out, size_t cap);

}  // namespace flannelts
