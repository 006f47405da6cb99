#pragma once
// Quiescent-state-based reclamation for the route table pointer: readers (worker threads) never lock.
// Each reader publishes the generation it last observed at a quiescent point (between batches) or
// kOffline while blocked in poll(). A writer swaps the pointer, bumps the generation and waits until
// every reader is offline or has observed the new generation; then nobody can still hold the old table.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

namespace flannelts {

class Qsbr {
 public:
  static constexpr uint64_t kOffline = ~0ull;

  struct Reader {
    std::atomic<uint64_t> seen{kOffline};
  };

  // Readers are registered before the worker threads start and never change while they run.
  void Register(Reader* r) { readers_.push_back(r); }

  // Called by a reader before it loads the protected pointer, and again between batches.
  void Quiescent(Reader* r) { r->seen.store(gen_.load()); }
  void Offline(Reader* r) { r->seen.store(kOffline); }

  // Called by the writer after publishing the new pointer. Bounded: readers pass a quiescent point
  // at least once per batch (at most 128 packets and a bounded send retry).
  void Synchronize() {
    const uint64_t target = gen_.fetch_add(1) + 1;
    for (Reader* r : readers_) {
      for (;;) {
        const uint64_t s = r->seen.load();
        if (s == kOffline || s >= target) break;
        std::this_thread::sleep_for(std::chrono::microseconds(20));
      }
    }
  }

 private:
  std::atomic<uint64_t> gen_{1};
  std::vector<Reader*> readers_;
};

}  // namespace flannelts
