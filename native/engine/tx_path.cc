// TUN -> wire: read up to kTunBatch packets (super-packets with TSO) -> classify, route (no route:
// ICMP back into the TUN), TTL if the encapsulation asks -> GSO split with the encapsulation's head
// room -> capture tap -> Encapsulation::Seal -> sendmmsg with UDP_SEGMENT (io/udp_batch). Counters
// are atomics updated once per packet (totals once per batch).
#include <cerrno>
#include <cstring>

#include "base/clock.h"
#include "engine/scratch.h"
#include "offload/gso.h"

namespace flannelts {

void Engine::HandleTunBatch(int fd4, int fd6, TxScratch& s) {
  const int64_t started = MonoNs();  // busy time of the TUN side, for the thread mode
  const RouteTable* t = table_.load();
  const size_t hdr = vnetHdr_ ? kVnetHdrLen : 0;
  const size_t headroom = traits_.headroom;
  // Arena room for the worst case: 64 KiB of payload, headers and encapsulation per 256-byte segment.
  const size_t worstCase = kMaxPacket + kMaxGsoSegments * (kMaxHeaderBytes + headroom + traits_.tailroom);
  s.packets = s.bytes = 0;
  for (int i = 0; i < kTunBatch; i++) {
    uint8_t* in = s.in.get();
    const ssize_t got = tun_->Read(in, kTxInput);
    if (got < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) CountDrop(kDropTunReadError, CaptureDir::kTx);
      break;
    }
    if (static_cast<size_t>(got) < hdr) {
      CountDrop(kDropBadVnetHdr, CaptureDir::kTx, in, static_cast<size_t>(got));
      continue;
    }
    VnetHdr vh;
    if (hdr) vh = ReadVnetHdr(in);
    uint8_t* p = in + hdr;
    const PacketInfo info = ClassifyPacket(p, static_cast<size_t>(got) - hdr);
    if (info.cls != PacketClass::kIPv4 && info.cls != PacketClass::kIPv6) {
      CountDrop(kDropMalformed, CaptureDir::kTx, p, static_cast<size_t>(got) - hdr);
      continue;
    }
    const RouteEntry* e = t ? t->Lookup(info.dst) : nullptr;
    if (!e) {
      // As flannel does: tell the local sender, through the TUN, that the network is unreachable.
      CountDrop(kDropNoRoute, CaptureDir::kTx, p, info.length);
      const size_t n = BuildIcmpUnreachable(p, info.length, info.cls, s.icmp, sizeof s.icmp);
      if (n && !tun_->WritePlain(s.icmp, n)) CountDrop(kDropTunWriteError, CaptureDir::kRx, s.icmp, n);
      continue;
    }
    // Once on the super-packet: every segment copies this header, so each leaves with TTL-1 as
    // flannel's proxy would have sent it. Not where the engine is a device (VXLAN): there the
    // kernel's forwarding into the TUN already did what it does for a device.
    const CapturePeer to{&e->publicIp, &e->subnet};
    if (traits_.decrementTtl && DecrementTtl(p, info.length, info.cls) == TtlResult::kExpired) {
      CountDrop(kDropTtlExpired, CaptureDir::kTx, p, info.length, to);
      continue;
    }
    // A route without an address (a WireGuard peer not heard from yet) starts on the IPv4 socket: Seal
    // picks the socket of wherever the peer is by then.
    const int fd = e->publicIp.family == 6 ? fd6 : fd4;
    if (fd < 0) {
      CountDrop(kDropSocketSendError, CaptureDir::kTx, p, info.length, to);  // no IPv6 socket bound
      continue;
    }
    if (s.sender.runs() == UdpSender::kMaxRuns || kTxArena - s.used < worstCase || s.sender.datagrams() + kMaxGsoSegments > UdpSender::kMaxDatagrams)
      FlushTx(s);
    const SplitResult r = GsoSplit(p, info.length, vh, s.arena.get() + s.used, kTxArena - s.used, headroom, traits_.tailroom);
    if (r.err != OffloadError::kOk) {
      CountDrop(kDropBadVnetHdr, CaptureDir::kTx, p, info.length, to);
      continue;
    }
    // What goes on the wire: each segment, as a packet of its own (the inner packet, before the
    // encapsulation may encrypt it in place).
    for (size_t k = 0; capture_.load(std::memory_order_relaxed) && k < r.segments; k++)
      Tap(CaptureDir::kTx, kNoDropReason, s.arena.get() + s.used + k * r.stride + headroom, (k + 1 == r.segments ? r.lastLen : r.segLen) - headroom, to);
    if (vh.gsoType != kGsoNone) {
      gsoPackets_.fetch_add(1, std::memory_order_relaxed);
      gsoSegments_.fetch_add(r.segments, std::memory_order_relaxed);
    }
    // Copy the address: the send may outlive a table swap when it waits for room offline.
    sockaddr_storage addr;
    std::memcpy(&addr, &e->sa, e->saLen);
    socklen_t addrLen = e->saLen;
    WireRun wire{s.arena.get() + s.used, r.segments, r.segLen, r.lastLen, r.stride, fd, &addr, &addrLen};
    const Sealed sealed = encap_->Seal(*e, p, info, wire, *this);
    if (sealed.verdict == TxVerdict::kDrop) CountDrop(sealed.drop, CaptureDir::kTx, p, info.length, to);
    if (sealed.verdict != TxVerdict::kSend) continue;  // a queued packet's segments were copied out
    DatagramRun& run = s.sender.Add(wire.segs);
    run.data = wire.data;
    run.segLen = wire.segLen;
    run.lastLen = wire.lastLen;
    run.segs = wire.segs;
    run.stride = wire.stride;
    run.owner = e->counters.get();
    std::memcpy(&run.addr, &addr, addrLen);
    run.addrLen = addrLen;
    run.fd = wire.fd;
    s.used += (wire.segs - 1) * wire.stride + wire.lastLen;
  }
  FlushTx(s);
  if (s.packets) {
    tx_total_.packets.fetch_add(s.packets, std::memory_order_relaxed);
    tx_total_.bytes.fetch_add(s.bytes, std::memory_order_relaxed);
  }
  tunBusyNs_.fetch_add(MonoNs() - started, std::memory_order_relaxed);
}

void Engine::FlushTx(TxScratch& s) {
  s.sender.Flush(udpGso_, stopFd_, stop_, s);
  s.used = 0;
}

}  // namespace flannelts
