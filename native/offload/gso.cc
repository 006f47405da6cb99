// Userspace GSO; see gso.h. Every checksum goes through base/checksum.h.
#include "offload/gso.h"

#include <algorithm>
#include <cstring>

#include "base/bytes.h"
#include "base/checksum.h"
#include "base/ip_packet.h"

namespace flannelts {

namespace {

SplitResult Fail(OffloadError e) {
  SplitResult r;
  r.err = e;
  return r;
}

}  // namespace

SplitResult GsoSplit(const uint8_t* p, size_t n, const VnetHdr& h, uint8_t* out, size_t cap, size_t headroom, size_t tailroom) {
  const uint8_t gso = h.gsoType & static_cast<uint8_t>(~kGsoEcn);
  if (gso == kGsoNone) {
    if (n + headroom + tailroom > cap) return Fail(OffloadError::kNoRoom);
    std::memcpy(out + headroom, p, n);
    if ((h.flags & kVnetFlagNeedsCsum) && !CompleteChecksum(out + headroom, n, h.csumStart, h.csumOffset)) return Fail(OffloadError::kBadCsumOffsets);
    SplitResult r;
    r.segments = 1;
    r.segLen = r.lastLen = n + headroom;
    r.stride = r.bytes = n + headroom + tailroom;
    return r;
  }
  if (n < 20) return Fail(OffloadError::kBadHeaders);
  const bool v4 = (p[0] >> 4) == 4;
  bool tcp;
  if (gso == kGsoTcpV4 || gso == kGsoTcpV6) {
    if (v4 != (gso == kGsoTcpV4)) return Fail(OffloadError::kBadGsoType);
    tcp = true;
  } else if (gso == kGsoUdpL4) {
    tcp = false;
  } else {
    return Fail(OffloadError::kBadGsoType);  // includes legacy UFO (kGsoUdp): fragmenting is not ours to do
  }
  const size_t l3 = v4 ? (p[0] & 0x0fu) * 4u : kIpv6Hdr;
  if (l3 < 20 || n < l3) return Fail(OffloadError::kBadHeaders);
  if (v4 && (Rd16(p + 6) & 0x3fff)) return Fail(OffloadError::kBadHeaders);  // a fragment cannot be segmented
  // IPv6 extension headers are not produced by the kernel's TSO for plain TCP; refusing them keeps
  // the L4 offset simple and exact.
  const uint8_t proto = v4 ? p[9] : p[6];
  if (proto != (tcp ? kProtoTcp : kProtoUdp)) return Fail(OffloadError::kBadGsoType);
  if ((h.flags & kVnetFlagNeedsCsum) && (h.csumStart != l3 || h.csumOffset != (tcp ? 16 : 6))) return Fail(OffloadError::kBadCsumOffsets);
  if (n < l3 + (tcp ? 20u : 8u)) return Fail(OffloadError::kBadHeaders);
  const size_t l4h = tcp ? (p[l3 + 12] >> 4) * 4u : 8u;
  if (l4h < (tcp ? 20u : 8u)) return Fail(OffloadError::kBadHeaders);
  const size_t hl = l3 + l4h;
  if (hl >= n) return Fail(OffloadError::kBadHeaders);  // a GSO packet without payload is nonsense
  const size_t payload = n - hl, mss = h.gsoSize;
  if (mss == 0) return Fail(OffloadError::kBadGsoSize);
  const size_t segs = (payload + mss - 1) / mss;
  if (segs > kMaxGsoSegments) return Fail(OffloadError::kBadGsoSize);
  const size_t total = segs * (hl + headroom + tailroom) + payload;
  if (total > cap) return Fail(OffloadError::kNoRoom);

  const uint32_t seq0 = tcp ? Rd32(p + l3 + 4) : 0;
  const uint16_t id0 = v4 ? Rd16(p + 4) : 0;
  // Every checksum is built from per-packet sums plus what changes per segment (lengths, IP ID,
  // sequence number, flags) and the payload summed where it already is, in the TUN read: nothing
  // freshly stored is read back (sums over just-patched header bytes stalled on store forwarding and
  // were most of SumHost's samples in the TX profile). The template is the header with those fields
  // zeroed; the fields are patched in after the copy.
  uint8_t tmpl[kMaxHeaderBytes];
  if (hl > sizeof tmpl) return Fail(OffloadError::kBadHeaders);
  std::memcpy(tmpl, p, hl);
  if (v4) {
    tmpl[2] = tmpl[3] = tmpl[4] = tmpl[5] = tmpl[10] = tmpl[11] = 0;
  } else {
    tmpl[4] = tmpl[5] = 0;
  }
  uint8_t* const l4t = tmpl + l3;
  const size_t csumAt = tcp ? 16 : 6;
  l4t[csumAt] = l4t[csumAt + 1] = 0;
  const uint8_t flags0 = tcp ? l4t[13] : 0;
  if (tcp) {
    std::memset(l4t + 4, 0, 4);  // sequence number
    l4t[13] = 0;                 // flags (the data offset byte stays in the sum)
  } else {
    l4t[4] = l4t[5] = 0;  // UDP length
  }
  const uint64_t ipBase = v4 ? SumHost(tmpl, l3, 0) : 0;
  // L4 header without its per-segment fields, plus the pseudo-header without its length.
  const uint64_t l4Base = SumHost(l4t, l4h, PseudoSum(tmpl, v4, proto, 0));
  size_t off = 0;
  SplitResult r;
  for (size_t i = 0; i < segs; i++) {
    const size_t chunk = std::min(mss, payload - i * mss);
    const size_t len = hl + chunk, l4len = len - l3;
    const uint8_t* src = p + hl + i * mss;
    uint8_t* s = out + off + headroom;
    std::memcpy(s, tmpl, hl);
    std::memcpy(s + hl, src, chunk);
    if (v4) {
      const uint16_t id = static_cast<uint16_t>(id0 + i);  // what the kernel's TSO does without fixed IDs
      Wr16(s + 2, static_cast<uint16_t>(len));
      Wr16(s + 4, id);
      Wr16(s + 10, static_cast<uint16_t>(~FoldNet(ipBase + Bswap16(static_cast<uint16_t>(len)) + Bswap16(id))));
    } else {
      Wr16(s + 4, static_cast<uint16_t>(l4len));
    }
    uint8_t* l4 = s + l3;
    // The L4 length counts once in the pseudo-header, and again in the UDP header.
    uint64_t acc = SumHost(src, chunk, l4Base + Bswap16(static_cast<uint16_t>(l4len)));
    if (tcp) {
      const uint32_t seq = seq0 + static_cast<uint32_t>(i * mss);
      uint8_t flags = flags0;
      if (i + 1 != segs) flags &= static_cast<uint8_t>(~(kTcpFin | kTcpPsh));
      if (i != 0) flags &= static_cast<uint8_t>(~kTcpCwr);
      Wr32(l4 + 4, seq);
      l4[13] = flags;
      acc += Bswap16(static_cast<uint16_t>(seq >> 16)) + Bswap16(static_cast<uint16_t>(seq)) + (static_cast<uint64_t>(flags) << 8);
    } else {
      Wr16(l4 + 4, static_cast<uint16_t>(l4len));
      acc += Bswap16(static_cast<uint16_t>(l4len));
    }
    uint16_t c = static_cast<uint16_t>(~FoldNet(acc));
    if (!tcp && c == 0) c = 0xffff;
    Wr16(l4 + csumAt, c);
    off += headroom + len + tailroom;
    if (i == 0) {
      r.segLen = headroom + len;
      r.stride = r.segLen + tailroom;
    }
    r.lastLen = headroom + len;
  }
  r.segments = segs;
  r.bytes = off;
  return r;
}

}  // namespace flannelts
