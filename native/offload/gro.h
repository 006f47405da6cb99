#pragma once
// Userspace GRO: coalesces consecutive TCP segments of a flow, as they arrive from the underlay, back
// into one super-packet for a single TUN write (the payloads are gathered where they lie, not copied).
// No syscalls, no allocation on the packet path.
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>

#include "offload/vnet_hdr.h"

namespace flannelts {

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
  // coalesced ones: for the userspace VXLAN VTEP, see EncapTraits::partialChecksums in encap/vxlan.cc.
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
