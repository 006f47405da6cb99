#pragma once
// The thread wake-up round trip on this machine (see wake_probe.cc): what every hand-off of a
// userspace data plane costs, printed by the bench beside the machine's details.
namespace flannelts {

constexpr int kMaxWakeRounds = 100000;

struct WakeRoundTrip {
  double medianUs, p90Us;
};

// rounds round trips between threads pinned to cpuA and cpuB (the caller checks both exist and
// 1 <= rounds <= kMaxWakeRounds); blocks for all of them. Throws std::runtime_error naming the CPUs
// and the errno when a thread cannot be pinned or a pipe fails.
WakeRoundTrip WakeProbe(int cpuA, int cpuB, int rounds);

}  // namespace flannelts
