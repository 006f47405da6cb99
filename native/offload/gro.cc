// Userspace GRO; see gro.h.
#include "offload/gro.h"

#include <cstring>

#include "base/bytes.h"
#include "base/checksum.h"
#include "base/ip_packet.h"

namespace flannelts {

namespace {
// At most this many segments in one coalesced packet; matches the UDP_SEGMENT limit on the way out.
constexpr int kMaxCoalesce = 64;
}  // namespace

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
    Wr16(pkt + 4, static_cast<uint16_t>(it.len - kIpv6Hdr));
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
    l3 = kIpv6Hdr;
    if (n < kIpv6Hdr || p[6] != kProtoTcp) return Pass(p, n);
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
  const bool mergeable = l3 == (v4 ? 20u : kIpv6Hdr) && payload > 0 && (flags & ~(kTcpAck | kTcpPsh)) == 0 && (flags & kTcpAck);
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
