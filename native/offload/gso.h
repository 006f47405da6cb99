#pragma once
// Userspace GSO: splits a TCP/UDP super-packet read from an IFF_VNET_HDR TUN into wire-sized packets,
// each with its own headers and checksums, back to back in a caller's buffer. No syscalls, no
// allocation, so the unit tests drive every branch with hand-made packets.
//
// Why userspace GSO and not "send the super-packet as is": the wire format must stay one inner IP
// packet per UDP datagram so stock flanneld peers keep interoperating; UDP_SEGMENT then lets one
// sendmsg carry up to 64 of those datagrams.
#include <cstddef>
#include <cstdint>

#include "offload/vnet_hdr.h"

namespace flannelts {

// Upper bound of segments one super-packet may be split into (64 KiB / a 256-byte MSS).
constexpr size_t kMaxGsoSegments = 256;

struct SplitResult {
  OffloadError err = OffloadError::kOk;
  size_t segments = 0;  // packets written back to back into out
  size_t segLen = 0;    // length of every segment but the last (the UDP_SEGMENT size)
  size_t lastLen = 0;   // length of the last segment (<= segLen)
  size_t stride = 0;    // distance from one segment's start to the next's: segLen + tailroom
  size_t bytes = 0;     // total bytes written, tail room included
};

// Splits the IP packet p[0..n) described by h into wire packets written back to back into out: the
// IP/TCP (or UDP) header replicated per segment with its length, IPv4 ID (+1 per segment), TCP
// sequence number, FIN/PSH only on the last segment, CWR only on the first, and every checksum
// computed in full (the peer may be a stock flanneld that forwards it as is). A packet without GSO
// (gso_type NONE) is copied as one segment, its partial checksum completed when NEEDS_CSUM is set.
// p must already be a classified IPv4/IPv6 packet of exactly n bytes. `headroom` bytes are left free
// in front of every segment (for an encapsulation header the caller writes, e.g. VXLAN + Ethernet);
// segLen, lastLen and bytes include them, so the result is still one UDP_SEGMENT run. `tailroom`
// bytes are left free behind every segment (an encapsulation that grows each segment in place, e.g.
// WireGuard's padding and tag): segment k then starts at out + k * stride.
SplitResult GsoSplit(const uint8_t* p, size_t n, const VnetHdr& h, uint8_t* out, size_t cap, size_t headroom = 0, size_t tailroom = 0);

}  // namespace flannelts
