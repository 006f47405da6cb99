// ICMP echo messages: building our requests and recognising the replies and errors that are ours
// among everything a raw socket of the namespace receives (other probers' traffic, our own requests
// looped back, replies to other hosts). Pure functions: malformed input is ignored, never a crash.
#include "echo.h"

#include <cstring>

#include "base/bytes.h"
#include "base/checksum.h"  // InetChecksum

namespace flannelts {

namespace {

constexpr uint8_t kProtoIcmp = 1;
constexpr uint8_t kProtoIcmpV6 = 58;
constexpr size_t kIcmpHdr = kEchoHdrLen;
constexpr size_t kV4Min = 20;
constexpr size_t kV6Hdr = 40;

// ICMP and ICMPv6 types the prober handles (RFC 792, RFC 4443).
constexpr uint8_t kV4EchoReply = 0, kV4Unreachable = 3, kV4EchoRequest = 8, kV4TimeExceeded = 11, kV4ParamProblem = 12;
constexpr uint8_t kV4FragNeeded = 4;  // destination-unreachable code that carries the next-hop MTU
constexpr uint8_t kV6Unreachable = 1, kV6TooBig = 2, kV6TimeExceeded = 3, kV6ParamProblem = 4;
constexpr uint8_t kV6EchoRequest = 128, kV6EchoReply = 129;

EchoMatch Ignored(const char* why) {
  EchoMatch m;
  m.ignored = why;
  return m;
}

bool SameAddr(const uint8_t* bytes, const IpAddr& a) { return std::memcmp(bytes, a.bytes, a.family == 4 ? 4 : 16) == 0; }

// An echo message (request or reply) of ours: our identifier, and our cookie when the payload is
// there (an error may quote only the 8-byte header). Returns nullptr when it is ours, else why not.
const char* NotOurs(const EchoKey& key, const uint8_t* icmp, size_t n, bool cookieRequired) {
  if (Rd16(icmp + 4) != key.id) return "other identifier";
  if (n < kIcmpHdr + kCookieLen) return cookieRequired ? "truncated" : nullptr;
  if (std::memcmp(icmp + kIcmpHdr, key.cookie, kCookieLen) != 0) return "other cookie";
  return nullptr;
}

// The request an ICMP error quotes (its IP header, then at least 8 bytes of ICMP): ours when it went
// to our target and carries our identifier (and cookie, when quoted).
EchoMatch MatchQuote(const EchoKey& key, const uint8_t* q, size_t n, bool v4) {
  size_t hdr = kV6Hdr;
  if (v4) {
    if (n < kV4Min || (q[0] >> 4) != 4) return Ignored("truncated");
    hdr = (q[0] & 0x0fu) * 4u;
    if (hdr < kV4Min || n < hdr) return Ignored("truncated");
    if (q[9] != kProtoIcmp) return Ignored("quotes other protocol");
    if (!SameAddr(q + 16, key.target)) return Ignored("other destination");
  } else {
    if (n < kV6Hdr || (q[0] >> 4) != 6) return Ignored("truncated");
    // Our requests carry no extension headers, so anything else in next-header is not ours.
    if (q[6] != kProtoIcmpV6) return Ignored("quotes other protocol");
    if (!SameAddr(q + 24, key.target)) return Ignored("other destination");
  }
  const uint8_t* icmp = q + hdr;
  const size_t m = n - hdr;
  if (m < kIcmpHdr) return Ignored("truncated");
  if (icmp[0] != (v4 ? kV4EchoRequest : kV6EchoRequest)) return Ignored("quotes other message");
  if (const char* why = NotOurs(key, icmp, m, false)) return Ignored(why);
  EchoMatch out;
  out.kind = EchoKind::kError;
  out.seq = Rd16(icmp + 6);
  return out;
}

EchoMatch MatchIcmp(const EchoKey& key, const uint8_t* icmp, size_t m, const IpAddr& from, bool v4) {
  if (m < kIcmpHdr) return Ignored("truncated");
  const uint8_t type = icmp[0];
  EchoMatch out;
  if (type == (v4 ? kV4EchoReply : kV6EchoReply)) {
    if (icmp[1] != 0) return Ignored("bad code");
    if (const char* why = NotOurs(key, icmp, m, true)) return Ignored(why);
    if (!(from == key.target)) return Ignored("other sender");
    out.kind = EchoKind::kReply;
    out.seq = Rd16(icmp + 6);
  } else if (type == (v4 ? kV4EchoRequest : kV6EchoRequest)) {
    // A raw socket also sees requests addressed to this namespace, ours included when they loop back.
    return Ignored(NotOurs(key, icmp, m, true) == nullptr ? "our own request" : "other request");
  } else if (v4 ? (type == kV4Unreachable || type == kV4TimeExceeded || type == kV4ParamProblem)
                : (type == kV6Unreachable || type == kV6TooBig || type == kV6TimeExceeded || type == kV6ParamProblem)) {
    out = MatchQuote(key, icmp + kIcmpHdr, m - kIcmpHdr, v4);
    if (out.kind == EchoKind::kIgnored) return out;
    if (v4 && type == kV4Unreachable && icmp[1] == kV4FragNeeded) out.mtu = Rd16(icmp + 6);
    if (!v4 && type == kV6TooBig) out.mtu = Rd32(icmp + 4);
  } else {
    return Ignored("other type");
  }
  out.type = type;
  out.code = icmp[1];
  out.from = from;
  return out;
}

}  // namespace

size_t BuildEchoRequest(const EchoKey& key, uint16_t seq, size_t dataLen, uint8_t* out, size_t cap) {
  const size_t len = kIcmpHdr + dataLen;
  if (dataLen < kCookieLen || dataLen > kMaxEchoData || cap < len) return 0;
  const bool v4 = key.target.family == 4;
  std::memset(out, 0, len);
  out[0] = v4 ? kV4EchoRequest : kV6EchoRequest;
  out[4] = static_cast<uint8_t>(key.id >> 8);
  out[5] = static_cast<uint8_t>(key.id);
  out[6] = static_cast<uint8_t>(seq >> 8);
  out[7] = static_cast<uint8_t>(seq);
  std::memcpy(out + kIcmpHdr, key.cookie, kCookieLen);
  // The rest of the payload counts up like ping's pattern, so a capture shows where it was cut.
  for (size_t i = kIcmpHdr + kCookieLen; i < len; i++) out[i] = static_cast<uint8_t>(i);
  if (v4) {
    const uint16_t sum = InetChecksum(out, len);
    out[2] = static_cast<uint8_t>(sum >> 8);
    out[3] = static_cast<uint8_t>(sum);
  }
  return len;
}

EchoMatch MatchEcho(const EchoKey& key, const uint8_t* p, size_t n, const IpAddr& from6) {
  if (key.target.family == 6) return MatchIcmp(key, p, n, from6, false);
  if (n < kV4Min || (p[0] >> 4) != 4) return Ignored("truncated");
  const size_t ihl = (p[0] & 0x0fu) * 4u;
  if (ihl < kV4Min || n < ihl) return Ignored("truncated");
  if (p[9] != kProtoIcmp) return Ignored("not ICMP");
  // The total length bounds the message when the buffer holds more (it never should on a raw socket).
  const size_t total = Rd16(p + 2);
  const size_t end = total >= ihl && total < n ? total : n;
  // Raw sockets get ICMP before the kernel checks it; ping drops bad checksums too.
  if (InetChecksum(p + ihl, end - ihl) != 0) return Ignored("bad checksum");
  IpAddr from;
  from.family = 4;
  std::memcpy(from.bytes, p + 12, 4);
  return MatchIcmp(key, p + ihl, end - ihl, from, true);
}

}  // namespace flannelts
