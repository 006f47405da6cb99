#pragma once
// The virtio_net_hdr that precedes every packet on an IFF_VNET_HDR TUN, and the two ways the engine
// puts a received packet into CHECKSUM_PARTIAL form for it. Pure: byte spans in, byte spans out.
#include <cstddef>
#include <cstdint>

namespace flannelts {

// struct virtio_net_hdr (linux/virtio_net.h), host byte order (TUN default for legacy virtio headers).
constexpr size_t kVnetHdrLen = 10;
constexpr uint8_t kVnetFlagNeedsCsum = 1;
constexpr uint8_t kVnetFlagDataValid = 2;
constexpr uint8_t kGsoNone = 0, kGsoTcpV4 = 1, kGsoUdp = 3, kGsoTcpV6 = 4, kGsoUdpL4 = 5, kGsoEcn = 0x80;

struct VnetHdr {
  uint8_t flags = 0;
  uint8_t gsoType = kGsoNone;
  uint16_t hdrLen = 0;
  uint16_t gsoSize = 0;
  uint16_t csumStart = 0;
  uint16_t csumOffset = 0;
};

VnetHdr ReadVnetHdr(const uint8_t* p);
void WriteVnetHdr(uint8_t* p, const VnetHdr& h);

enum class OffloadError : uint8_t {
  kOk,
  kBadGsoType,      // unknown gso_type, or one that does not match the packet (TCPV4 on IPv6, UDP on TCP)
  kBadCsumOffsets,  // csum_start/csum_offset outside the packet, or not at the L4 header GSO needs
  kBadHeaders,      // IP/L4 header unusable for GSO (options we do not handle, truncated, no payload)
  kBadGsoSize,      // gso_size 0, or too small to make progress within the segment limit
  kNoRoom,          // output buffer too small for the segments
};
const char* OffloadErrorName(OffloadError e);

// Turns a TCP/UDP packet (as FixL4Checksum accepts) into CHECKSUM_PARTIAL form: the checksum field
// gets the pseudo-header sum and h the matching NEEDS_CSUM offsets. False (nothing changed) otherwise.
bool MakeChecksumPartial(uint8_t* p, size_t n, VnetHdr* h);

// Describes an oversized TCP packet (one that left a Linux sender as a single GSO skb and reached
// us whole, as a VXLAN datagram between namespaces does) as a TSO super-packet of mtu-sized segments:
// checksum made partial, h set to TCPV4/TCPV6 with gso_size = mtu - headers. False when it is not a
// plain TCP packet with payload, or the MTU leaves no room.
bool MakeTcpSuperPacket(uint8_t* p, size_t n, size_t mtu, VnetHdr* h);

// IPv4 with options (60) and TCP with options (60): the largest header a GSO packet can carry.
constexpr size_t kMaxHeaderBytes = 120;

}  // namespace flannelts
