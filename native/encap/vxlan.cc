// The userspace VTEP's side of the engine; the frame codec is vxlan_codec.h.
#include "encap/vxlan.h"

#include <atomic>
#include <cstring>
#include <stdexcept>
#include <string>

#include "encap/vxlan_codec.h"
#include "routes/routes.h"

namespace flannelts {

namespace {

uint64_t MacToken(const Mac& m) {
  uint64_t v = 0;
  for (uint8_t b : m.b) v = v << 8 | b;
  return v;
}

class Vxlan final : public Encapsulation {
 public:
  Vxlan(const VxlanOptions& o, std::vector<int> pool4, std::vector<int> pool6)
      : Encapsulation(Traits(o)), o_(o), pool4_(std::move(pool4)), pool6_(std::move(pool6)) {}

  // The TX path writes the peer's VTEP MAC into every frame: a VXLAN peer without one is a bug upstream.
  void CheckPeers(const std::vector<RouteSpec>& specs) const override {
    for (size_t i = 0; i < specs.size(); i++)
      if (specs[i].mac.empty()) throw std::invalid_argument("peer[" + std::to_string(i) + "].mac: a VXLAN peer needs its VTEP MAC");
  }

  Sealed Seal(const RouteEntry& route, const uint8_t* inner, const PacketInfo& info, WireRun& run, EncapHost&) override {
    // Every segment is one Ethernet frame from our VTEP to the peer's, as the kernel would send it.
    uint8_t prefix[kVxlanPrefix];
    WriteVxlanPrefix(prefix, o_.vni, route.mac, o_.mac, info.cls == PacketClass::kIPv4 ? kEtherIPv4 : kEtherIPv6);
    uint8_t* at = run.data;
    for (size_t k = 0; k < run.segs; k++, at += run.stride) std::memcpy(at, prefix, kVxlanPrefix);
    // One outer source port per inner flow: no reordering within a flow, flows spread over the
    // peer's receive queues (the kernel's udp_flow_src_port).
    const std::vector<int>& pool = route.publicIp.family == 4 ? pool4_ : pool6_;
    if (!pool.empty()) run.fd = pool[FlowHash(inner, info.length) % pool.size()];
    return {};
  }

  Opened Open(uint8_t* p, size_t n, const IpAddr& outer, uint16_t, EncapHost& host) override {
    const VxlanFrame f = ParseVxlan(p, n, o_.vni, o_.mac);
    // A capture shows what the frame carried (after VXLAN + Ethernet), or the whole truncated datagram.
    switch (f.status) {
      case VxlanStatus::kIp: return Opened{RxVerdict::kInner, kDropCount, f.payload, MacToken(f.src)};
      case VxlanStatus::kArp:
        if (!host.KnownPeer(outer)) return Drop(kDropUnknownPeer, f.payload);
        return Arp(p + f.payload, n - f.payload, f.src, outer, host, f.payload);
      case VxlanStatus::kWrongVni: return Drop(kDropWrongVni, f.payload);
      case VxlanStatus::kNotForUs: return Drop(kDropWrongDstMac, f.payload);
      case VxlanStatus::kBadEtherType: return Drop(kDropBadEtherType, f.payload);
      case VxlanStatus::kBadFlags: return Drop(kDropMalformed, f.payload);
      default: return Drop(kDropMalformed, 0);  // truncated
    }
  }

  // The frame must come from the VTEP that owns the inner source's subnet (its VtepMAC in the
  // lease), as the kernel's FDB/neighbour entries would require of a frame it accepts.
  int Admit(const RouteEntry& route, uint64_t sender) const override { return MacToken(route.mac) == sender ? kDropCount : kDropUnknownMac; }

  uint64_t ArpReplies() const override { return arpReplies_.load(std::memory_order_relaxed); }

 private:
  static EncapTraits Traits(const VxlanOptions& o) {
    EncapTraits t;
    t.headroom = kVxlanPrefix;
    t.checkOuterSource = true;
    // A Linux vxlan sender over a device with checksum offload (veth, virtio) may leave the inner
    // TCP/UDP checksum partial, to be finished by hardware that a packet handed between namespaces
    // never meets; the kernel's own vxlan receiver trusts it from the skb state, which a socket does
    // not show us. The outer UDP checksum, verified by the kernel before the datagram reached us,
    // covers those bytes, so the VTEP hands every TCP/UDP packet to the TUN as CHECKSUM_PARTIAL (as
    // coalesced ones are anyway: the kernel fills the checksum in if the packet leaves the node), or
    // without a virtio header finishes the checksum itself.
    t.partialChecksums = true;
    t.resegmentAbove = o.innerMtu;
    return t;
  }

  static Opened Drop(int reason, size_t captureFrom) { return Opened{RxVerdict::kDrop, reason, captureFrom, 0}; }

  // Answers an ARP request for our VTEP address back to the sender's VTEP, at the port every flannel
  // node listens on, from our listening socket.
  Opened Arp(const uint8_t* arp, size_t n, const Mac& requester, const IpAddr& outer, EncapHost& host, size_t at) {
    uint8_t reply[kVxlanPrefix + kArpLen];
    if (!o_.hasVtep4 || BuildArpReply(arp, n, o_.mac, o_.vtep4, reply + kVxlanPrefix) == 0) return Drop(kDropArpIgnored, at);
    WriteVxlanPrefix(reply, o_.vni, requester, o_.mac, kEtherArp);
    if (host.SendOwn(outer, host.ListenPort(), reply, sizeof reply, kVxlanPrefix)) arpReplies_.fetch_add(1, std::memory_order_relaxed);
    return Opened{RxVerdict::kHandled, kDropCount, 0, 0};
  }

  const VxlanOptions o_;
  const std::vector<int> pool4_, pool6_;
  std::atomic<uint64_t> arpReplies_{0};
};

}  // namespace

std::unique_ptr<Encapsulation> MakeVxlan(const VxlanOptions& o, std::vector<int> pool4, std::vector<int> pool6) {
  return std::make_unique<Vxlan>(o, std::move(pool4), std::move(pool6));
}

}  // namespace flannelts
