// VXLAN/ARP codec for the userspace VTEP; see vxlan_codec.h.
#include "encap/vxlan_codec.h"

#include <cstring>

#include "base/bytes.h"

namespace flannelts {

namespace {
constexpr uint8_t kFlagVniValid = 0x08;
const Mac kBroadcast = [] {
  Mac m;
  std::memset(m.b, 0xff, 6);
  return m;
}();

uint32_t Mix(uint32_t h, uint32_t v) {
  h ^= v;
  h *= 0x01000193u;  // FNV-1a prime, enough to spread a handful of words
  return h ^ (h >> 15);
}
}  // namespace

const char* VxlanStatusName(VxlanStatus s) {
  switch (s) {
    case VxlanStatus::kIp: return "ip";
    case VxlanStatus::kArp: return "arp";
    case VxlanStatus::kTruncated: return "truncated";
    case VxlanStatus::kBadFlags: return "bad_flags";
    case VxlanStatus::kWrongVni: return "wrong_vni";
    case VxlanStatus::kNotForUs: return "not_for_us";
    case VxlanStatus::kBadEtherType: return "bad_ethertype";
  }
  return "unknown";
}

void WriteVxlanPrefix(uint8_t* out, uint32_t vni, const Mac& dst, const Mac& src, uint16_t etherType) {
  out[0] = kFlagVniValid;
  out[1] = out[2] = out[3] = 0;
  out[4] = static_cast<uint8_t>(vni >> 16);
  out[5] = static_cast<uint8_t>(vni >> 8);
  out[6] = static_cast<uint8_t>(vni);
  out[7] = 0;
  std::memcpy(out + 8, dst.b, 6);
  std::memcpy(out + 14, src.b, 6);
  Wr16(out + 20, etherType);
}

VxlanFrame ParseVxlan(const uint8_t* p, size_t n, uint32_t vni, const Mac& ourMac) {
  VxlanFrame f;
  if (n < kVxlanPrefix) {
    f.status = VxlanStatus::kTruncated;
    return f;
  }
  f.vni = static_cast<uint32_t>(p[4]) << 16 | static_cast<uint32_t>(p[5]) << 8 | p[6];
  std::memcpy(f.dst.b, p + 8, 6);
  std::memcpy(f.src.b, p + 14, 6);
  f.etherType = Rd16(p + 20);
  f.payload = kVxlanPrefix;
  if (!(p[0] & kFlagVniValid)) {
    f.status = VxlanStatus::kBadFlags;
  } else if (f.vni != vni) {
    f.status = VxlanStatus::kWrongVni;
  } else if (f.etherType == kEtherArp) {
    f.status = f.dst == ourMac || f.dst == kBroadcast ? VxlanStatus::kArp : VxlanStatus::kNotForUs;
  } else if (f.etherType == kEtherIPv4 || f.etherType == kEtherIPv6) {
    f.status = f.dst == ourMac ? VxlanStatus::kIp : VxlanStatus::kNotForUs;
  } else {
    f.status = VxlanStatus::kBadEtherType;
  }
  return f;
}

size_t BuildArpReply(const uint8_t* p, size_t n, const Mac& ourMac, const uint8_t ourIp[4], uint8_t* out) {
  // htype 1 (Ethernet), ptype IPv4, hlen 6, plen 4, op 1 (request), target protocol address = ours.
  if (n < kArpLen || Rd16(p) != 1 || Rd16(p + 2) != kEtherIPv4 || p[4] != 6 || p[5] != 4 || Rd16(p + 6) != 1) return 0;
  if (std::memcmp(p + 24, ourIp, 4) != 0) return 0;
  Wr16(out, 1);
  Wr16(out + 2, kEtherIPv4);
  out[4] = 6;
  out[5] = 4;
  Wr16(out + 6, 2);                 // reply
  std::memcpy(out + 8, ourMac.b, 6);  // sender: us
  std::memcpy(out + 14, ourIp, 4);
  std::memcpy(out + 18, p + 8, 10);  // target: the requester's hardware + protocol address
  return kArpLen;
}

uint32_t FlowHash(const uint8_t* p, size_t n) {
  uint32_t h = 0x811c9dc5u;
  if (n < 20) return h;
  size_t l4 = 0;
  uint8_t proto = 0;
  auto word = [&](size_t off) { return static_cast<uint32_t>(p[off]) << 24 | p[off + 1] << 16 | p[off + 2] << 8 | p[off + 3]; };
  if ((p[0] >> 4) == 4) {
    proto = p[9];
    h = Mix(Mix(h, word(12)), word(16));
    // Only the first fragment carries ports: fragments hash on addresses alone so all of a datagram's
    // fragments take the same outer port.
    const bool fragment = (Rd16(p + 6) & 0x3fff) != 0;
    if (!fragment) l4 = (p[0] & 0x0fu) * 4u;
  } else if ((p[0] >> 4) == 6 && n >= 40) {
    proto = p[6];
    for (size_t off = 8; off < 40; off += 4) h = Mix(h, word(off));
    l4 = 40;  // with extension headers proto is not TCP/UDP: hashed on addresses, one flow per pair
  }
  h = Mix(h, proto);
  if (l4 && (proto == 6 || proto == 17) && n >= l4 + 4) h = Mix(h, word(l4));
  // murmur3's finalizer: every input bit reaches the low bits the caller takes modulo the pool size.
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  return h ^ (h >> 16);
}

}  // namespace flannelts
