#pragma once
// The adaptive window of the TX thread's reply polling (Engine::PollAfterWork). Polling after a small
// send pays off when an answer comes back within the window (ping, request/response, ACKs): the
// thread that is already running handles it instead of a sleeping one being woken across vCPUs. It
// is wasted CPU when nothing answers (one-way traffic), so the window halves after each miss, goes to
// zero below kMinUs, and is probed again at full size once every kProbeEvery small sends. A hit
// restores the full window. Worst case with nothing ever answering: one halving series (about twice
// the window) per kProbeEvery sends. Pure and per thread: no atomics, no clock.
#include <cstdint>

namespace flannelts {

class ReplyPollWindow {
 public:
  static constexpr int kMinUs = 16;
  static constexpr uint32_t kProbeEvery = 64;

  explicit ReplyPollWindow(int maxUs) : max_(maxUs > 0 ? maxUs : 0), cur_(max_) {}

  // The window to poll for after this small send; 0: do not poll this time.
  int Next() {
    if (max_ == 0) return 0;
    if (cur_ > 0) return cur_;
    if (++skipped_ < kProbeEvery) return 0;
    skipped_ = 0;
    return max_;
  }

  // After polling for Next()'s window: did anything turn up?
  void Done(bool hit, int polledUs) {
    if (hit) {
      cur_ = max_;
      return;
    }
    const int half = polledUs / 2;
    cur_ = half >= kMinUs ? half : 0;
    skipped_ = 0;
  }

  int current() const { return cur_; }

 private:
  int max_;
  int cur_;
  uint32_t skipped_ = 0;
};

}  // namespace flannelts
