// Userspace GSO/GRO for the TUN <-> UDP path. See offload.h for the contract; the checksums are
// base/checksum.h's.
#include "offload.h"

#include <algorithm>
#include <cstring>

#include "base/bytes.h"
#include "base/checksum.h"

namespace flannelts {

namespace {

constexpr uint8_t kProtoTcp = 6, kProtoUdp = 17;
constexpr uint8_t kTcpFin = 0x01, kTcpPsh = 0x08, kTcpAck = 0x10, kTcpCwr = 0x80;
constexpr size_t kV6Hdr = 40;
// IPv4 with options (60) and TCP with options (60): the largest header a GSO packet can carry.
constexpr size_t kMaxHeaderBytes = 120;
// At most this many segments in one coalesced packet; matches the UDP_SEGMENT limit on the way out.
constexpr int kMaxCoalesce = 64;

SplitResult Fail(OffloadError e) {
  SplitResult r;
  r.err = e;
  return r;
}

}  // namespace

VnetHdr ReadVnetHdr(const uint8_t* p) {
  VnetHdr h;
  h.flags = p[0];
  h.gsoType = p[1];
  std::memcpy(&h.hdrLen, p + 2, 2);
  std::memcpy(&h.gsoSize, p + 4, 2);
  std::memcpy(&h.csumStart, p + 6, 2);
  std::memcpy(&h.csumOffset, p + 8, 2);
  return h;
}

void WriteVnetHdr(uint8_t* p, const VnetHdr& h) {
  p[0] = h.flags;
  p[1] = h.gsoType;
  std::memcpy(p + 2, &h.hdrLen, 2);
  std::memcpy(p + 4, &h.gsoSize, 2);
  std::memcpy(p + 6, &h.csumStart, 2);
  std::memcpy(p + 8, &h.csumOffset, 2);
}

const char* OffloadErrorName(OffloadError e) {
  switch (e) {
    case OffloadError::kOk: return "ok";
    case OffloadError::kBadGsoType: return "bad_gso_type";
    case OffloadError::kBadCsumOffsets: return "bad_csum_offsets";
    case OffloadError::kBadHeaders: return "bad_headers";
    case OffloadError::kBadGsoSize: return "bad_gso_size";
    case OffloadError::kNoRoom: return "no_room";
  }
  return "unknown";
}

bool MakeChecksumPartial(uint8_t* p, size_t n, VnetHdr* h) {
  bool v4;
  uint8_t proto;
  size_t l3, off;
  if (!L4ChecksumAt(p, n, &v4, &proto, &l3, &off)) return false;
  Wr16(p + l3 + off, FoldNet(PseudoSum(p, v4, proto, n - l3)));
  *h = VnetHdr{};
  h->flags = kVnetFlagNeedsCsum;
  h->csumStart = static_cast<uint16_t>(l3);
  h->csumOffset = static_cast<uint16_t>(off);
  return true;
}

bool MakeTcpSuperPacket(uint8_t* p, size_t n, size_t mtu, VnetHdr* h) {
  bool v4;
  uint8_t proto;
  size_t l3, off;
  if (!L4ChecksumAt(p, n, &v4, &proto, &l3, &off) || proto != kProtoTcp || n < l3 + 20) return false;
  const size_t hl = l3 + (p[l3 + 12] >> 4) * 4u;
  if (hl < l3 + 20 || hl >= n || mtu <= hl + 8) return false;
  if (!MakeChecksumPartial(p, n, h)) return false;
  h->gsoType = v4 ? kGsoTcpV4 : kGsoTcpV6;
  h->hdrLen = static_cast<uint16_t>(hl);
  h->gsoSize = static_cast<uint16_t>(mtu - hl);
  return true;
}

SplitResult GsoSplit(const uint8_t* p, size_t n, const VnetHdr& h, uint8_t* out, size_t cap, size_t headroom) {
  const uint8_t gso = h.gsoType & static_cast<uint8_t>(~kGsoEcn);
  if (gso == kGsoNone) {
    if (n + headroom > cap) return Fail(OffloadError::kNoRoom);
    std::memcpy(out + headroom, p, n);
    if ((h.flags & kVnetFlagNeedsCsum) && !CompleteChecksum(out + headroom, n, h.csumStart, h.csumOffset)) return Fail(OffloadError::kBadCsumOffsets);
    SplitResult r;
    r.segments = 1;
    r.segLen = r.lastLen = r.bytes = n + headroom;
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
  const size_t l3 = v4 ? (p[0] & 0x0fu) * 4u : kV6Hdr;
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
  const size_t total = segs * (hl + headroom) + payload;
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
    off += headroom + len;
    if (i == 0) r.segLen = headroom + len;
    r.lastLen = headroom + len;
  }
  r.segments = segs;
  r.bytes = off;
  return r;
}

// ---- GRO ----

struct GroTable::Item {
  bool used = false;
  uint64_t age = 0;
  uint8_t key[40];
  size_t keyLen = 0;
  // Room for the virtio header, then a copy of the first segment's IP + TCP header, edited on emit.
  uint8_t head[kVnetHdrLen + kMaxHeaderBytes];
  uint8_t* first = nullptr;  // the first segment where it lies (written as is when nothing merged)
  iovec parts[kMaxGroParts];  // [0] the header in head, then each segment's payload where it lies
  size_t len = 0;             // packet length so far
  size_t l3 = 0, hl = 0;
  uint16_t gsoSize = 0;
  uint32_t nextSeq = 0;
  int segs = 0;
};
static_assert(kMaxGroParts >= kMaxCoalesce + 1, "a coalesced packet is its header and up to kMaxCoalesce payloads");

GroTable::GroTable(TunSink* sink) : sink_(sink), items_(new Item[kSlots]) {}

GroTable::~GroTable() { delete[] items_; }

GroTable::Item* GroTable::Find(const uint8_t* key, size_t keyLen) {
  for (int i = 0; i < kSlots; i++) {
    Item& it = items_[i];
    if (it.used && it.keyLen == keyLen && std::memcmp(it.key, key, keyLen) == 0) return &it;
  }
  return nullptr;
}

GroTable::Item* GroTable::FreeSlot() {
  Item* oldest = &items_[0];
  for (int i = 0; i < kSlots; i++) {
    if (!items_[i].used) return &items_[i];
    if (items_[i].age < oldest->age) oldest = &items_[i];
  }
  Emit(*oldest);
  return oldest;
}

void GroTable::PassThrough(const uint8_t* p, size_t n) {
  static const uint8_t kPlain[kVnetHdrLen] = {};
  sink_->WritePacket(kPlain, p, n, 1);
}

void GroTable::Pass(uint8_t* p, size_t n) {
  VnetHdr h;
  if (!partial_ || !MakeChecksumPartial(p, n, &h)) return PassThrough(p, n);
  uint8_t hdr[kVnetHdrLen];
  WriteVnetHdr(hdr, h);
  sink_->WritePacket(hdr, p, n, 1);
}

void GroTable::Emit(Item& it) {
  it.used = false;
  if (it.segs == 1) {  // untouched: its own checksums are still valid
    Pass(it.first, it.len);
    return;
  }
  uint8_t* pkt = it.head + kVnetHdrLen;
  const bool v4 = (pkt[0] >> 4) == 4;
  if (v4) {
    Wr16(pkt + 2, static_cast<uint16_t>(it.len));
    SetIpv4Checksum(pkt, it.l3);
  } else {
    Wr16(pkt + 4, static_cast<uint16_t>(it.len - kV6Hdr));
  }
  // CHECKSUM_PARTIAL: the field carries the folded pseudo-header sum; the kernel adds the TCP bytes.
  Wr16(pkt + it.l3 + 16, FoldNet(PseudoSum(pkt, v4, kProtoTcp, it.len - it.l3)));
  VnetHdr h;
  h.flags = kVnetFlagNeedsCsum;
  h.gsoType = v4 ? kGsoTcpV4 : kGsoTcpV6;
  h.hdrLen = static_cast<uint16_t>(it.hl);
  h.gsoSize = it.gsoSize;
  h.csumStart = static_cast<uint16_t>(it.l3);
  h.csumOffset = 16;
  WriteVnetHdr(it.head, h);
  sink_->Write(it.head, it.parts, it.segs + 1, it.len, static_cast<size_t>(it.segs));
}

void GroTable::Add(uint8_t* p, size_t n) {
  if (n < 20) return Pass(p, n);
  const bool v4 = (p[0] >> 4) == 4;
  size_t l3;
  if (v4) {
    l3 = (p[0] & 0x0fu) * 4u;
    if (p[9] != kProtoTcp || (Rd16(p + 6) & 0x3fff) || l3 < 20) return Pass(p, n);
  } else {
    l3 = kV6Hdr;
    if (n < kV6Hdr || p[6] != kProtoTcp) return Pass(p, n);
  }
  if (n < l3 + 20) return Pass(p, n);
  const uint8_t* th = p + l3;
  const size_t thl = (th[12] >> 4) * 4u;
  if (thl < 20 || l3 + thl > n) return Pass(p, n);

  uint8_t key[40];
  size_t keyLen = 0;
  key[keyLen++] = v4 ? 4 : 6;
  const size_t alen = v4 ? 8 : 32;
  std::memcpy(key + keyLen, p + (v4 ? 12 : 8), alen);
  keyLen += alen;
  std::memcpy(key + keyLen, th, 4);  // ports
  keyLen += 4;

  const size_t hl = l3 + thl, payload = n - hl;
  const uint8_t flags = th[13];
  // Only plain data segments merge: SYN/FIN/RST/URG/ECE/CWR and IPv4 options keep their own packet.
  const bool mergeable = l3 == (v4 ? 20u : kV6Hdr) && payload > 0 && (flags & ~(kTcpAck | kTcpPsh)) == 0 && (flags & kTcpAck);
  const uint32_t seq = Rd32(th + 4);
  Item* it = Find(key, keyLen);
  if (it) {
    const uint8_t* q = it->head + kVnetHdrLen;
    const uint8_t* qth = q + it->l3;
    bool ok = mergeable && it->hl == hl && seq == it->nextSeq && payload <= it->gsoSize && it->len + payload <= 65535 &&
              it->segs < kMaxCoalesce && std::memcmp(th + 8, qth + 8, 4) == 0 /* ack */ &&
              std::memcmp(th + 20, qth + 20, thl - 20) == 0 /* options, e.g. timestamps */;
    if (ok && v4) ok = p[1] == q[1] && p[8] == q[8] && (p[6] & 0x40) == (q[6] & 0x40);  // TOS, TTL, DF
    if (ok && !v4) ok = std::memcmp(p, q, 4) == 0 && p[7] == q[7];  // version/class/flow, hop limit
    if (ok) {
      it->parts[it->segs + 1] = iovec{p + hl, payload};
      it->len += payload;
      it->nextSeq += static_cast<uint32_t>(payload);
      it->segs++;
      coalesced_++;
      if (flags & kTcpPsh) it->head[kVnetHdrLen + it->l3 + 13] |= kTcpPsh;
      // A short segment or PSH ends what the sender meant as one burst: nothing may follow it.
      if ((flags & kTcpPsh) || payload < it->gsoSize) Emit(*it);
      return;
    }
    Emit(*it);  // keep the flow in order: the open packet goes first
  }
  if (!mergeable || (flags & kTcpPsh)) return Pass(p, n);
  Item* slot = FreeSlot();
  slot->used = true;
  slot->age = ++tick_;
  std::memcpy(slot->key, key, keyLen);
  slot->keyLen = keyLen;
  std::memcpy(slot->head + kVnetHdrLen, p, hl);
  slot->first = p;
  slot->parts[0] = iovec{slot->head + kVnetHdrLen, hl};
  slot->parts[1] = iovec{p + hl, payload};
  slot->len = n;
  slot->l3 = l3;
  slot->hl = hl;
  slot->gsoSize = static_cast<uint16_t>(payload);
  slot->nextSeq = seq + static_cast<uint32_t>(payload);
  slot->segs = 1;
}

void GroTable::Flush() {
  for (;;) {
    Item* oldest = nullptr;
    for (int i = 0; i < kSlots; i++)
      if (items_[i].used && (!oldest || items_[i].age < oldest->age)) oldest = &items_[i];
    if (!oldest) return;
    Emit(*oldest);
  }
}

}  // namespace flannelts
