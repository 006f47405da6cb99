#pragma once
// Nanosecond clock reads shared by the engine (reply-poll deadlines, thread-mode windows, thread CPU
// time) and the bench's wake-up probe.
#include <time.h>

#include <cstdint>

namespace flannelts {

// Nanoseconds on clock c; 0 when it cannot be read (e.g. the zero clock id Engine::Start leaves when
// pthread_getcpuclockid failed).
inline int64_t ClockNs(clockid_t c) {
  timespec t{};
  if (clock_gettime(c, &t) != 0) return 0;
  return static_cast<int64_t>(t.tv_sec) * 1000000000 + t.tv_nsec;
}

inline int64_t MonoNs() { return ClockNs(CLOCK_MONOTONIC); }

}  // namespace flannelts
