// The engine's side of `flannelctl capture`: publishing, draining and retiring the CaptureRing the
// workers offer packets to (capture_ring.h). Off, a tap costs the workers one relaxed load.
#include "engine/engine.h"

#include <stdexcept>

namespace flannelts {

void Engine::StartCapture(const CaptureFilter& f) {
  std::lock_guard<std::mutex> lock(ctl_);
  if (closed_) throw std::runtime_error("engine " + tunName_ + " is closed");
  if (capture_.load()) throw std::runtime_error("a capture is already running on " + tunName_);
  capture_.store(new CaptureRing(f), std::memory_order_release);
}

CaptureCounters Engine::ReadCapture(const CaptureSink& fn) {
  std::lock_guard<std::mutex> lock(ctl_);
  CaptureRing* c = capture_.load();
  if (!c) return CaptureCounters{false, 0, 0};
  c->Drain(fn);
  return CaptureCounters{true, c->recorded(), c->lost()};
}

CaptureCounters Engine::StopCapture(const CaptureSink& fn) {
  std::lock_guard<std::mutex> lock(ctl_);
  std::unique_ptr<CaptureRing> c(capture_.exchange(nullptr));
  if (!c) return CaptureCounters{false, 0, 0};
  qsbr_.Synchronize();  // no worker can be inside Offer() any more
  c->Drain(fn);
  captureLostDone_ += c->lost();
  return CaptureCounters{false, c->recorded(), c->lost()};
}

void Engine::TapSlow(CaptureDir dir, uint8_t reason, const uint8_t* p, size_t len, const CapturePeer& peer) {
  // Pairs with the release store in StartCapture: the ring is fully built before we touch it.
  CaptureRing* c = capture_.load(std::memory_order_acquire);
  if (c) c->Offer(dir, reason, p, len, peer);
}

}  // namespace flannelts
