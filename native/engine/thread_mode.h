#pragma once
// When the engine's two directions share one thread and when each gets its own (Engine::MaybeSwitchMode).
//
// One thread for both directions is the faster shape whenever it is not saturated: a packet written
// into the TUN is often answered at once (the ping reply, the TCP ACK, the next request), and the
// thread that wrote it reads the answer itself instead of the kernel waking a second thread for it.
// On a VM whose idle vCPUs halt, that wake-up is an IPI through the hypervisor and tens of
// microseconds on the answer's path. Measured in the 2-node lab: ping p50 35-58 vs 60-96 us, single
// TCP stream 9.5-9.8 vs 9.1 Gbit/s, and 2-3 thousand instead of ~17 thousand thread wake-ups a second.
// Two threads pay off only when one cannot keep up with both directions, so the engine starts with one
// and splits when, over a window, the engine's threads used at least splitAtPercent of the wall time
// in CPU and the smaller direction did at least a quarter of the work (a saturated one-way stream gains
// nothing from a second thread for its few ACKs); it goes back to one when both threads together used
// less than half of that. CPU time, not time inside the handlers: on a shared vCPU a thread preempted by
// the pod it just woke is not busy. The gap between the thresholds keeps the mode from flapping. Pure:
// no clock, no atomics.
#include <algorithm>
#include <cstdint>

namespace flannelts {

class ThreadModeDecider {
 public:
  // How often the mode is looked at, at most: long enough to average bursts, short enough that a
  // bidirectional stream gets its second thread before it has lost much.
  static constexpr int64_t kWindowNs = 100'000'000;
  static constexpr int kDefaultSplitAtPercent = 80;

  explicit ThreadModeDecider(int splitAtPercent) : p_(std::clamp(splitAtPercent, 1, 100)) {}

  // The mode for the next window, from the current one (split: two threads), the CPU time the engine's
  // threads used in this window, and how the work divided between the directions (time inside the
  // TUN side's reads and sends, and the socket side's receives and writes).
  bool Next(bool split, int64_t wallNs, int64_t cpuNs, int64_t tunBusyNs, int64_t sockBusyNs) const {
    if (wallNs <= 0) return split;
    if (split) return cpuNs * 200 >= p_ * wallNs;
    return cpuNs * 100 >= p_ * wallNs && std::min(tunBusyNs, sockBusyNs) * 4 >= tunBusyNs + sockBusyNs && tunBusyNs + sockBusyNs > 0;
  }

 private:
  const int64_t p_;
};

}  // namespace flannelts
