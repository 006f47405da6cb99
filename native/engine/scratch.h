#pragma once
// The data threads' buffers and batch sizes (engine-internal: tx_path, rx_path, thread_loop).
#include <cstddef>
#include <cstdint>
#include <memory>

#include "base/ip_packet.h"
#include "engine/engine.h"
#include "io/udp_batch.h"
#include "offload/gro.h"
#include "offload/vnet_hdr.h"

namespace flannelts {

// TX: one input buffer (a TUN read is at most a 64 KiB super-packet plus its virtio header); what
// goes on the wire is built in an arena (GSO segments back to back, or the packet copied) and sent
// when the arena or the message list is nearly full, or the TUN is drained.
constexpr size_t kTxArena = 1 << 20;
constexpr size_t kTxInput = kVnetHdrLen + kMaxPacket;
// TUN reads per wake-up: every packet of one batch can wait in the sender as its own run.
constexpr int kTunBatch = UdpSender::kMaxRuns;
// Only a small batch (a request, a handful of ACKs) starts the TX thread's reply polling: bulk sends
// keep the thread busy anyway, and polling between them takes a vCPU the receivers need.
constexpr uint64_t kReplyPollAfterAtMost = 4;

// The polling TX thread reads sockets with fewer, smaller-footprint slots than the RX thread: it is
// there for answers, and a bulk burst it finds is still handled, a batch at a time.
constexpr int kReplyPollRxBatch = 8;
// RX: UDP_GRO hands back up to 64 KiB per datagram, so fewer, larger slots than the TX side.
constexpr int kRxBatch = UdpReceiver::kMaxSlots;

// Per-thread buffers, allocated once when the thread starts; left uninitialised so an idle engine
// does not touch (and keep resident) pages it never uses. The scratch is also where a flush reports
// what it sent (SendEvents).
struct TxScratch : SendEvents {
  explicit TxScratch(Engine* e) : engine(e) {}
  void Sent(const DatagramRun& run, size_t segs, size_t bytes) override {
    PeerCounters* peer = static_cast<PeerCounters*>(run.owner);
    peer->txPackets.fetch_add(segs, std::memory_order_relaxed);
    peer->txBytes.fetch_add(bytes, std::memory_order_relaxed);
    if (segs > 1) engine->CountGsoSend();
    packets += segs;
    this->bytes += bytes;
  }
  void SendFailed(const uint8_t* p, size_t len) override { engine->CountDrop(kDropSocketSendError, CaptureDir::kTx, p, len); }
  void GsoDisabled() override { engine->NoteGsoDisabled(); }

  Engine* const engine;
  std::unique_ptr<uint8_t[]> in{new uint8_t[kTxInput]};
  std::unique_ptr<uint8_t[]> arena{new uint8_t[kTxArena]};
  size_t used = 0;
  uint8_t icmp[kIcmpMaxLen];
  UdpSender sender;
  uint64_t packets = 0, bytes = 0;
};

// Also where the TUN writer reports (TunWriteEvents): GRO writes packets after they were counted.
struct RxScratch : TunWriteEvents {
  RxScratch(Engine* e, int slots) : engine(e), rx(slots) {}
  void Coalesced(size_t segments) override { engine->CountCoalesced(segments); }
  void WriteFailed(const uint8_t* pkt, size_t len, size_t segments) override { engine->TunWriteFailed(*this, pkt, len, segments); }

  Engine* const engine;
  const RouteTable* table = nullptr;  // the peer table of the batch being handled
  UdpReceiver rx;
  std::unique_ptr<TunWriter> writer;
  std::unique_ptr<GroTable> gro;  // only with a virtio header on the TUN
  std::unique_ptr<uint8_t[]> split;  // VXLAN without a virtio header: segments of an oversized packet
  uint64_t packets = 0, bytes = 0;
  int64_t nowMs = 0;  // wall clock of this batch, for the peers' last-seen time
};

}  // namespace flannelts
