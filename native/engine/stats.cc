// Engine::Stats: a snapshot of the atomics for the control thread; see stats.h.
#include "engine/engine.h"

#include <mutex>

namespace flannelts {

EngineStats Engine::Stats() {
  std::lock_guard<std::mutex> lock(ctl_);
  EngineStats s{};
  s.txPackets = tx_total_.packets.load(std::memory_order_relaxed);
  s.txBytes = tx_total_.bytes.load(std::memory_order_relaxed);
  s.rxPackets = rx_total_.packets.load(std::memory_order_relaxed);
  s.rxBytes = rx_total_.bytes.load(std::memory_order_relaxed);
  for (int i = 0; i < kDropCount; i++) s.drops[i] = drops_[i].load(std::memory_order_relaxed);
  s.arpReplies = encap_->ArpReplies();
  s.offloads = OffloadState{vnetHdr_, tso_, uso_, udpGso_.load(), udpGro_};
  s.replyPoll = ReplyPollCounters{replyPollUs_, replyPollHits_.load(std::memory_order_relaxed), replyPollMisses_.load(std::memory_order_relaxed),
                                  replyPollSkipped_.load(std::memory_order_relaxed)};
  s.threads = ThreadModeCounters{dataThreads_, split_.load(std::memory_order_relaxed) ? 2 : 1, splits_.load(std::memory_order_relaxed),
                                 merges_.load(std::memory_order_relaxed)};
  s.offload = OffloadCounters{gsoPackets_.load(std::memory_order_relaxed), gsoSegments_.load(std::memory_order_relaxed),
                              udpGsoSends_.load(std::memory_order_relaxed), groPackets_.load(std::memory_order_relaxed),
                              groSegments_.load(std::memory_order_relaxed), udpGroBatches_.load(std::memory_order_relaxed)};
  {
    std::lock_guard<std::mutex> notes(notesMu_);
    s.offloadNotes = offloadNotes_;
  }
  // Only the control thread swaps or frees tables, and it holds ctl_, so this pointer is stable.
  if (const RouteTable* t = table_.load()) {
    for (const RouteEntry& e : t->entries()) {
      s.peers.push_back(PeerStats{FormatPrefix(e.subnet), FormatIp(e.publicIp), e.mac.IsZero() ? "" : FormatMac(e.mac), e.port,
                                  e.counters->txPackets.load(std::memory_order_relaxed),
                                  e.counters->txBytes.load(std::memory_order_relaxed),
                                  e.counters->rxPackets.load(std::memory_order_relaxed),
                                  e.counters->rxBytes.load(std::memory_order_relaxed),
                                  e.counters->lastRxMs.load(std::memory_order_relaxed)});
    }
  }
  const CaptureRing* c = capture_.load();
  s.captureActive = c != nullptr;
  s.captureLost = captureLostDone_ + (c ? c->lost() : 0);
  return s;
}

}  // namespace flannelts
