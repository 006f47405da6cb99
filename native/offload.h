#pragma once
// Pure offload logic over byte spans: virtio_net_hdr parsing, checksum completion, userspace GSO
// (split a TCP/UDP super-packet read from an IFF_VNET_HDR TUN into wire-sized packets) and GRO (coalesce
// consecutive TCP segments of a flow back into one super-packet for a TUN write). No syscalls, no
// allocation on the packet path, so the unit tests drive every branch with hand-made packets.
//
// Why userspace GSO and not "send the super-packet as is": the wire format must stay flannel-udp (one
// inner IP packet per UDP datagram) so stock flanneld peers keep interoperating; UDP_SEGMENT then lets
// one sendmsg carry up to 64 of those datagrams.
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>

#include "base/checksum.h"

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

// Upper bound of segments one super-packet may be split into (64 KiB / a 256-byte MSS).
constexpr size_t kMaxGsoSegments = 256;

struct SplitResult {
  OffloadError err = OffloadError::kOk;
  size_t segments = 0;  // packets written back to back into out
  size_t segLen = 0;    // length of every segment but the last (the UDP_SEGMENT size)
  size_t lastLen = 0;   // length of the last segment (<= segLen)
  size_t bytes = 0;     // total bytes written
};

// Splits the IP packet p[0..n) described by h into wire packets written back to back into out: the
// IP/TCP (or UDP) header replicated per segment with its length, IPv4 ID (+1 per segment), TCP
// sequence number, FIN/PSH only on the last segment, CWR only on the first, and every checksum
// computed in full (the peer may be a stock flanneld that forwards it as is). A packet without GSO
// (gso_type NONE) is copied as one segment, its partial checksum completed when NEEDS_CSUM is set.
// p must already be a classified IPv4/IPv6 packet of exactly n bytes. `headroom` bytes are left free
// in front of every segment (for an encapsulation header the caller writes, e.g. VXLAN + Ethernet);
// segLen, lastLen and bytes include them, so the result is still one UDP_SEGMENT run.
SplitResult GsoSplit(const uint8_t* p, size_t n, const VnetHdr& h, uint8_t* out, size_t cap, size_t headroom = 0);

// Receives finished packets from the coalescer. `hdr` is the virtio_net_hdr to write in front of the
// packet, whose len bytes are `parts` in order: a coalesced packet is its edited header followed by
// every segment's payload where it lies in the receive buffers (writev gathers them; no copy here).
class TunSink {
 public:
  virtual ~TunSink() = default;
  virtual void Write(const uint8_t* hdr, const iovec* parts, int nparts, size_t len, size_t segments) = 0;
  void WritePacket(const uint8_t* hdr, const uint8_t* pkt, size_t len, size_t segments) {
    const iovec one{const_cast<uint8_t*>(pkt), len};
    Write(hdr, &one, 1, len, segments);
  }
};

// Most pieces a TunSink::Write gets: the header and up to 64 segments' payloads.
constexpr int kMaxGroParts = 65;

// GRO: coalesces consecutive in-order TCP segments of a flow (same addresses, ports, ACK, options,
// IPv4 TOS/TTL/DF or IPv6 traffic class/flow/hop limit, only ACK(+PSH on the last) set) into one
// super-packet of up to 64 KiB, emitted with gso_type TCPV4/TCPV6, NEEDS_CSUM and the pseudo-header
// sum in the TCP checksum field (the kernel completes or re-segments it). Everything else passes
// through unchanged, in order per flow. Call Flush() at the end of every receive batch.
class GroTable {
 public:
  static constexpr int kSlots = 8;

  explicit GroTable(TunSink* sink);
  ~GroTable();
  GroTable(const GroTable&) = delete;
  GroTable& operator=(const GroTable&) = delete;

  // p: a validated IPv4/IPv6 packet of exactly n bytes. Only its headers are copied: the payload is
  // written from where it lies, so p must stay valid and unchanged until Flush() (the receive batch's
  // buffers do). With SetPartialChecksums a passed-through packet's checksum field is rewritten in place.
  void Add(uint8_t* p, size_t n);
  void Flush();

  uint64_t coalesced() const { return coalesced_; }  // segments merged into an earlier one
  // Packets that pass through unmerged go out as they came (the kernel verifies their checksums), or
  // with this on, TCP/UDP ones as CHECKSUM_PARTIAL (NEEDS_CSUM, pseudo-header sum in the field), like
  // coalesced ones: for the userspace VXLAN VTEP, see Engine::UdpToTun.
  void SetPartialChecksums(bool on) { partial_ = on; }

 private:
  struct Item;
  void Emit(Item& it);
  void PassThrough(const uint8_t* p, size_t n);
  void Pass(uint8_t* p, size_t n);  // PassThrough, or CHECKSUM_PARTIAL form with SetPartialChecksums
  Item* Find(const uint8_t* key, size_t keyLen);
  Item* FreeSlot();

  TunSink* sink_;
  bool partial_ = false;
  Item* items_;
  uint64_t tick_ = 0, coalesced_ = 0;
};

}  // namespace flannelts
