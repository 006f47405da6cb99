// Inner IP packet helpers; see ip_packet.h. Pure functions: they only read/write the spans they are given.
#include "base/ip_packet.h"

#include <algorithm>
#include <cstring>

#include "base/bytes.h"
#include "base/checksum.h"

namespace flannelts {

namespace {

constexpr uint8_t kIcmpTtl = 64;

PacketInfo Malformed(PacketClass c) { return PacketInfo{c, 0, {}, {}}; }

// ICMP errors must not be answered with ICMP errors (RFC 1122 3.2.2, RFC 4443 2.4(e)), or two
// misconfigured nodes could bounce errors forever.
bool IsIcmpError(const uint8_t* p, size_t n, PacketClass cls) {
  if (cls == PacketClass::kIPv4) {
    const size_t ihl = (p[0] & 0x0f) * 4u;
    const bool firstFragment = (Rd16(p + 6) & 0x1fff) == 0;
    if (p[9] != kProtoIcmp || !firstFragment || n <= ihl) return false;
    const uint8_t type = p[ihl];
    return type == 3 || type == 4 || type == 5 || type == 11 || type == 12;
  }
  if (p[6] != kProtoIcmpV6 || n <= kIpv6Hdr) return false;
  return p[kIpv6Hdr] < 128;
}

bool UnusableSource(const IpAddr& a) {
  if (a.family == 4) return a.bytes[0] >= 224 || (a.bytes[0] | a.bytes[1] | a.bytes[2] | a.bytes[3]) == 0;
  if (a.bytes[0] == 0xff) return true;
  for (int i = 0; i < 16; i++)
    if (a.bytes[i]) return false;
  return true;
}

}  // namespace

const char* PacketClassName(PacketClass c) {
  switch (c) {
    case PacketClass::kIPv4: return "ipv4";
    case PacketClass::kIPv6: return "ipv6";
    case PacketClass::kTruncated: return "truncated";
    case PacketClass::kBadVersion: return "bad_version";
    case PacketClass::kBadIHL: return "bad_ihl";
    case PacketClass::kLengthMismatch: return "length_mismatch";
  }
  return "unknown";
}

PacketInfo ClassifyPacket(const uint8_t* p, size_t n) {
  if (n < 1) return Malformed(PacketClass::kTruncated);
  const unsigned version = p[0] >> 4;
  if (version == 4) {
    if (n < kIpv4MinHdr) return Malformed(PacketClass::kTruncated);
    const size_t ihl = (p[0] & 0x0f) * 4u;
    if (ihl < kIpv4MinHdr) return Malformed(PacketClass::kBadIHL);
    if (ihl > n) return Malformed(PacketClass::kTruncated);
    const size_t total = Rd16(p + 2);
    // Total length beyond the datagram means bytes are missing; shorter than the header is nonsense.
    // Shorter than the datagram is trailing padding and is trimmed.
    if (total > n || total < ihl) return Malformed(PacketClass::kLengthMismatch);
    PacketInfo info{PacketClass::kIPv4, total, {}, {}};
    info.src.family = info.dst.family = 4;
    std::memcpy(info.src.bytes, p + 12, 4);
    std::memcpy(info.dst.bytes, p + 16, 4);
    return info;
  }
  if (version == 6) {
    if (n < kIpv6Hdr) return Malformed(PacketClass::kTruncated);
    const size_t total = kIpv6Hdr + Rd16(p + 4);
    // Payload length 0 with extra bytes would be a jumbogram; flannel links never carry those.
    if (total > n || (total == kIpv6Hdr && n > kIpv6Hdr && p[6] == 0)) return Malformed(PacketClass::kLengthMismatch);
    PacketInfo info{PacketClass::kIPv6, total, {}, {}};
    info.src.family = info.dst.family = 6;
    std::memcpy(info.src.bytes, p + 8, 16);
    std::memcpy(info.dst.bytes, p + 24, 16);
    return info;
  }
  return Malformed(PacketClass::kBadVersion);
}

TtlResult DecrementTtl(uint8_t* p, size_t n, PacketClass cls) {
  if (cls == PacketClass::kIPv6) {
    if (n < kIpv6Hdr || p[7] <= 1) return TtlResult::kExpired;
    p[7]--;
    return TtlResult::kOk;
  }
  if (n < kIpv4MinHdr || p[8] <= 1) return TtlResult::kExpired;
  // RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), m = the 16-bit word holding TTL and protocol.
  // flannel's proxy.c adds 0x100 with an end-around carry, which is the same update; this form also
  // never produces the 0xffff/-0 ambiguity, so the result equals a full recomputation.
  const uint16_t oldWord = Rd16(p + 8);
  p[8]--;
  const uint16_t newWord = Rd16(p + 8);
  const uint32_t sum = static_cast<uint16_t>(~Rd16(p + 10)) + static_cast<uint16_t>(~oldWord) + newWord;
  Wr16(p + 10, static_cast<uint16_t>(~Fold16(sum)));
  return TtlResult::kOk;
}

size_t BuildIcmpUnreachable(const uint8_t* p, size_t n, PacketClass cls, uint8_t* out, size_t cap) {
  if (cap < kIcmpMaxLen) return 0;
  const PacketInfo info = ClassifyPacket(p, n);
  if (info.cls != cls || (cls != PacketClass::kIPv4 && cls != PacketClass::kIPv6)) return 0;
  if (UnusableSource(info.src) || IsIcmpError(p, info.length, cls)) return 0;

  if (cls == PacketClass::kIPv4) {
    // Like flannel's send_net_unreachable: from the unreachable destination back to the sender,
    // quoting the offending IP header and the first 8 bytes of its payload.
    const size_t ihl = (p[0] & 0x0f) * 4u;
    const size_t quote = std::min(info.length, ihl + 8);
    const size_t total = kIpv4MinHdr + 8 + quote;
    std::memset(out, 0, kIpv4MinHdr + 8);
    out[0] = 0x45;
    Wr16(out + 2, static_cast<uint16_t>(total));
    out[8] = kIcmpTtl;
    out[9] = kProtoIcmp;
    std::memcpy(out + 12, info.dst.bytes, 4);
    std::memcpy(out + 16, info.src.bytes, 4);
    Wr16(out + 10, InetChecksum(out, kIpv4MinHdr));
    uint8_t* icmp = out + kIpv4MinHdr;
    icmp[0] = 3;  // destination unreachable
    icmp[1] = 0;  // net unreachable
    std::memcpy(icmp + 8, p, quote);
    Wr16(icmp + 2, InetChecksum(icmp, 8 + quote));
    return total;
  }

  // ICMPv6: quote as much of the offender as fits in the IPv6 minimum MTU (RFC 4443 3.1).
  const size_t quote = std::min(info.length, kIcmpMaxLen - kIpv6Hdr - 8);
  const size_t icmpLen = 8 + quote;
  std::memset(out, 0, kIpv6Hdr + 8);
  out[0] = 0x60;
  Wr16(out + 4, static_cast<uint16_t>(icmpLen));
  out[6] = kProtoIcmpV6;
  out[7] = kIcmpTtl;
  std::memcpy(out + 8, info.dst.bytes, 16);
  std::memcpy(out + 24, info.src.bytes, 16);
  uint8_t* icmp = out + kIpv6Hdr;
  icmp[0] = 1;  // destination unreachable
  icmp[1] = 0;  // no route to destination
  std::memcpy(icmp + 8, p, quote);
  // Pseudo-header: source, destination, upper-layer length (32 bit), zeros, next header.
  Wr16(icmp + 2, static_cast<uint16_t>(~FoldNet(PseudoSum(out, false, kProtoIcmpV6, icmpLen) + SumHost(icmp, icmpLen, 0))));
  return kIpv6Hdr + icmpLen;
}

}  // namespace flannelts
