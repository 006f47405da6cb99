#pragma once
// The adaptive window of the TX thread's reply polling (Engine::PollAfterWork). Polling after a small
// send pays off when an answer comes back within the window (ping, request/response, ACKs): the
// thread that is already running handles it instead of a sleeping one being woken across vCPUs. It
// is wasted CPU when nothing answers (one-way traffic), so the window halves after kMissesToShrink
// polls in a row ran out (one late answer on a busy machine must not switch polling off), goes to
// zero below kMinUs, and is then probed at full size once every kProbeEvery small sends; a probe that
// runs out costs only itself. Any answer restores the full window. Worst case with nothing ever
// answering: one halving series, then one full window per kProbeEvery sends. Pure and per thread:
// no atomics, no clock.
#include <cstdint>

namespace flannelts {

class ReplyPollWindow {
 public:
  static constexpr int kMinUs = 16;
  static constexpr uint32_t kMissesToShrink = 3;
  static constexpr uint32_t kProbeEvery = 64;

  explicit ReplyPollWindow(int maxUs) : max_(maxUs > 0 ? maxUs : 0), cur_(max_) {}

  // The window to poll for after this small send; 0: do not poll this time.
  int Next() {
    if (max_ == 0) return 0;
    if (cur_ > 0) return cur_;
    if (++skipped_ < kProbeEvery) return 0;
    skipped_ = 0;
    probing_ = true;
    return max_;
  }

  // After polling for Next()'s window: did an answer turn up?
  void Done(bool hit) {
    if (hit) {
      cur_ = max_;
      misses_ = 0;
      probing_ = false;
      return;
    }
    if (probing_) {  // still nothing answers: stay off until the next probe
      probing_ = false;
      return;
    }
    if (++misses_ < kMissesToShrink) return;
    misses_ = 0;
    const int half = cur_ / 2;
    cur_ = half >= kMinUs ? half : 0;
  }

 private:
  int max_;
  int cur_;
  uint32_t misses_ = 0;
  uint32_t skipped_ = 0;
  bool probing_ = false;
};

}  // namespace flannelts
