// virtio_net_hdr encoding and CHECKSUM_PARTIAL conversion; see vnet_hdr.h.
#include "offload/vnet_hdr.h"

#include <cstring>

#include "base/bytes.h"
#include "base/checksum.h"
#include "base/ip_packet.h"

namespace flannelts {

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

}  // namespace flannelts
