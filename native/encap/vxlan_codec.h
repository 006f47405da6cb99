#pragma once
// Pure VXLAN (RFC 7348) and ARP helpers for the userspace VTEP. The wire format is exactly what a
// Linux vxlan device sends and accepts: UDP payload = VXLAN header (flags 0x08 = "VNI valid", 24-bit
// VNI) + inner Ethernet frame (destination = peer VTEP MAC, source = ours, EtherType IPv4/IPv6/ARP).
// No allocation, no syscalls: the unit tests feed these functions real kernel bytes and fuzz them.
#include <cstddef>
#include <cstdint>

#include "base/mac.h"

namespace flannelts {

constexpr size_t kVxlanHdrLen = 8;
constexpr size_t kEthHdrLen = 14;
constexpr size_t kVxlanPrefix = kVxlanHdrLen + kEthHdrLen;  // what precedes the inner IP packet
constexpr uint16_t kEtherIPv4 = 0x0800, kEtherArp = 0x0806, kEtherIPv6 = 0x86dd;
constexpr size_t kArpLen = 28;  // Ethernet/IPv4 ARP payload

// The 22 bytes in front of an inner packet: VXLAN header, then Ethernet dst, src, EtherType.
void WriteVxlanPrefix(uint8_t* out, uint32_t vni, const Mac& dst, const Mac& src, uint16_t etherType);

enum class VxlanStatus : uint8_t {
  kIp,           // IPv4/IPv6 frame for us: payload at `payload`
  kArp,          // ARP (any opcode): payload at `payload`
  kTruncated,    // shorter than VXLAN + Ethernet headers
  kBadFlags,     // the I flag (VNI valid) is not set
  kWrongVni,     // a VNI other than ours
  kNotForUs,     // Ethernet destination neither our MAC nor broadcast (broadcast only for ARP)
  kBadEtherType  // not IPv4/IPv6/ARP (also VLAN-tagged frames, which a flannel VTEP never sends)
};
const char* VxlanStatusName(VxlanStatus s);

struct VxlanFrame {
  VxlanStatus status;
  uint32_t vni = 0;
  Mac src, dst;
  uint16_t etherType = 0;
  size_t payload = 0;  // offset of the inner packet / ARP payload
};

// Validates a VXLAN datagram for the VTEP (vni, ourMac). Never reads past n.
VxlanFrame ParseVxlan(const uint8_t* p, size_t n, uint32_t vni, const Mac& ourMac);

// Given an ARP payload (p, n), writes a 28-byte ARP reply into out when it is an Ethernet/IPv4
// request for `ourIp` (network order); returns 28, else 0. Only requests for our VTEP address are
// answered, as a Linux vxlan device with proxy off would through its own neighbour code.
size_t BuildArpReply(const uint8_t* p, size_t n, const Mac& ourMac, const uint8_t ourIp[4], uint8_t* out);

// A hash of the inner flow (addresses, protocol, ports when present), so each flow keeps one outer
// source port (no reordering) while flows spread over the peer's receive queues, as the kernel's
// vxlan does with udp_flow_src_port.
uint32_t FlowHash(const uint8_t* p, size_t n);

}  // namespace flannelts
