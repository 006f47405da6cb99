// Wire -> TUN: recvmmsg (UDP_GRO batches cut into datagrams) -> Encapsulation::Open -> classify the
// inner packet -> outer-source check, inner source -> route, Encapsulation::Admit, TTL if asked ->
// capture tap -> GRO coalesce and writev to the TUN (or re-segment an oversized one).
#include <time.h>

#include <algorithm>
#include <cerrno>

#include "base/checksum.h"
#include "base/clock.h"
#include "engine/scratch.h"
#include "offload/gso.h"

namespace flannelts {

std::unique_ptr<RxScratch> Engine::NewRxScratch(int batch) {
  std::unique_ptr<RxScratch> s(new RxScratch(this, batch));
  s->writer = std::make_unique<TunWriter>(*tun_, s.get());
  if (vnetHdr_) s->gro = std::make_unique<GroTable>(s->writer.get());
  // Why an encapsulation may want this: encap/vxlan.cc.
  if (s->gro && traits_.partialChecksums) s->gro->SetPartialChecksums(true);
  return s;
}

void Engine::HandleUdpBatch(int sock, RxScratch& s) {
  s.packets = s.bytes = 0;  // also when nothing is read: callers look at them after every call
  const int64_t started = MonoNs();  // busy time of the socket side (a read that finds nothing is not)
  const int n = s.rx.Receive(sock, udpGro_);
  if (n < 0) {
    if (errno != EAGAIN && errno != EINTR) CountDrop(kDropSocketRecvError, CaptureDir::kRx);
    return;
  }
  const RouteTable* t = table_.load();
  s.table = t;
  timespec now{};
  clock_gettime(CLOCK_REALTIME_COARSE, &now);
  s.nowMs = static_cast<int64_t>(now.tv_sec) * 1000 + now.tv_nsec / 1000000;
  for (int i = 0; i < n; i++) {
    uint8_t* p = s.rx.data(i);
    const size_t len = s.rx.length(i);
    const IpAddr outer = FromSockaddr(s.rx.source(i));
    // The port sits at the same offset in sockaddr_in and sockaddr_in6.
    const uint16_t port = ntohs(reinterpret_cast<const sockaddr_in&>(s.rx.source(i)).sin_port);
    if (s.rx.truncated(i)) {
      CountDrop(kDropMalformed, CaptureDir::kRx, p, len, {&outer});
      continue;
    }
    const size_t seg = s.rx.groSegment(i);
    if (seg == 0 || seg >= len) {
      HandleDatagram(p, len, outer, port, t, s);
      continue;
    }
    // UDP_GRO: the kernel glued same-size datagrams from one sender; each is still one inner packet.
    udpGroBatches_.fetch_add(1, std::memory_order_relaxed);
    for (size_t off = 0; off < len; off += seg) HandleDatagram(p + off, std::min(seg, len - off), outer, port, t, s);
  }
  if (s.gro) s.gro->Flush();
  if (s.packets) {
    rx_total_.packets.fetch_add(s.packets, std::memory_order_relaxed);
    rx_total_.bytes.fetch_add(s.bytes, std::memory_order_relaxed);
  }
  sockBusyNs_.fetch_add(MonoNs() - started, std::memory_order_relaxed);
}

void Engine::HandleDatagram(uint8_t* p, size_t len, const IpAddr& outer, uint16_t outerPort, const RouteTable* t, RxScratch& s) {
  const Opened o = encap_->Open(p, len, outer, outerPort, *this);
  if (o.verdict == RxVerdict::kHandled) return;
  if (o.verdict == RxVerdict::kDrop) {
    CountDrop(o.drop, CaptureDir::kRx, p + o.offset, len - o.offset, {&outer});
    return;
  }
  p += o.offset;
  len -= o.offset;
  const PacketInfo info = ClassifyPacket(p, len);
  if (info.cls != PacketClass::kIPv4 && info.cls != PacketClass::kIPv6) {
    CountDrop(kDropMalformed, CaptureDir::kRx, p, len, {&outer});
    return;
  }
  // flannel accepts anything; we require the datagram to come from a peer, carrying traffic from
  // that peer's subnet, so an underlay host cannot inject packets with pod source addresses. (An
  // encapsulation that authenticates its peers, like WireGuard, turns the outer check off and
  // answers Admit from its session instead.)
  const bool outerCheck = traits_.checkOuterSource && !allowUnknownSource_;
  if (outerCheck && !(t && t->IsPeerAddress(outer))) {
    CountDrop(kDropUnknownPeer, CaptureDir::kRx, p, info.length, {&outer});
    return;
  }
  const RouteEntry* e = t ? t->Lookup(info.src) : nullptr;
  if (!e || (outerCheck && !(e->publicIp == outer))) {
    CountDrop(kDropSpoofedSource, CaptureDir::kRx, p, info.length, {&outer});
    return;
  }
  const CapturePeer from{&outer, &e->subnet};
  if (const int drop = encap_->Admit(*e, o.sender); drop != kDropCount) {
    CountDrop(drop, CaptureDir::kRx, p, info.length, from);
    return;
  }
  if (traits_.decrementTtl && DecrementTtl(p, info.length, info.cls) == TtlResult::kExpired) {
    CountDrop(kDropTtlExpired, CaptureDir::kRx, p, info.length, from);
    return;
  }
  Tap(CaptureDir::kRx, kNoDropReason, p, info.length, from);  // before GRO may merge it
  const Oversized big = traits_.resegmentAbove && info.length > traits_.resegmentAbove ? WriteOversized(p, info.length, s) : Oversized::kNo;
  if (big == Oversized::kRefused) {
    CountDrop(kDropTunWriteError, CaptureDir::kRx, p, info.length, from);
    return;
  }
  if (big == Oversized::kWritten) {
    // written (or its segments' write errors counted) as segments of the TUN's MTU
  } else if (s.gro) {
    s.gro->Add(p, info.length);  // write errors are counted by the TunWriter
  } else {
    if (traits_.partialChecksums) FixL4Checksum(p, info.length);  // the inner checksum may be partial
    if (!tun_->WriteRaw(p, info.length)) {
      CountDrop(kDropTunWriteError, CaptureDir::kRx, p, info.length, from);
      return;
    }
  }
  e->counters->rxPackets.fetch_add(1, std::memory_order_relaxed);
  e->counters->rxBytes.fetch_add(info.length, std::memory_order_relaxed);
  // Same cache line as the counters just written; stored only when a second has passed.
  if (s.nowMs - e->counters->lastRxMs.load(std::memory_order_relaxed) >= 1000) e->counters->lastRxMs.store(s.nowMs, std::memory_order_relaxed);
  s.packets++;
  s.bytes += info.length;
}

Engine::Oversized Engine::WriteOversized(uint8_t* p, size_t n, RxScratch& s) {
  VnetHdr h;
  if (!MakeTcpSuperPacket(p, n, traits_.resegmentAbove, &h)) return Oversized::kNo;
  const size_t segs = (n - h.hdrLen + h.gsoSize - 1) / h.gsoSize;
  if (s.gro) {
    s.gro->Flush();  // whatever of the flow is open goes first, so the stream stays in order
    uint8_t hdr[kVnetHdrLen];
    WriteVnetHdr(hdr, h);
    const iovec whole{p, n};
    if (!tun_->WriteGathered(hdr, &whole, 1)) return Oversized::kRefused;
    CountCoalesced(segs);
    return Oversized::kWritten;
  }
  constexpr size_t kSplitBytes = kMaxPacket + kMaxGsoSegments * 120;
  if (!s.split) s.split.reset(new uint8_t[kSplitBytes]);
  const SplitResult r = GsoSplit(p, n, h, s.split.get(), kSplitBytes);
  if (r.err != OffloadError::kOk) return Oversized::kNo;
  const uint8_t* at = s.split.get();
  for (size_t k = 0; k < r.segments; k++) {
    const size_t len = k + 1 == r.segments ? r.lastLen : r.segLen;
    if (!tun_->WriteRaw(at, len)) CountDrop(kDropTunWriteError, CaptureDir::kRx, at, len);
    at += len;
  }
  return Oversized::kWritten;
}

void Engine::TunWriteFailed(RxScratch& s, const uint8_t* pkt, size_t len, size_t segments) {
  // One drop per packet the TUN refused: a super-packet of GRO carries `segments` received packets.
  CountDrop(kDropTunWriteError, CaptureDir::kRx, pkt, len, {}, segments);
  // HandleDatagram counted them as received when they passed the checks, and GRO wrote them later
  // (or together): take them back out, so rx counts what reached the TUN whatever the offloads, as
  // the write without a virtio header does. Each merged segment had carried its own IP+TCP header.
  const PacketInfo info = ClassifyPacket(pkt, len);
  if (info.cls != PacketClass::kIPv4 && info.cls != PacketClass::kIPv6) return;
  size_t bytes = info.length;
  if (segments > 1) {
    const size_t l3 = info.cls == PacketClass::kIPv4 ? (pkt[0] & 0x0fu) * 4u : kIpv6Hdr;
    if (len < l3 + 20) return;
    bytes += (segments - 1) * (l3 + (pkt[l3 + 12] >> 4) * 4u);
  }
  s.packets -= std::min<uint64_t>(segments, s.packets);
  s.bytes -= std::min<uint64_t>(bytes, s.bytes);
  const RouteEntry* e = s.table ? s.table->Lookup(info.src) : nullptr;
  if (!e) return;
  e->counters->rxPackets.fetch_sub(segments, std::memory_order_relaxed);
  e->counters->rxBytes.fetch_sub(bytes, std::memory_order_relaxed);
}

}  // namespace flannelts
