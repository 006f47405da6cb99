#pragma once
// The eventfds the engine's threads sleep on besides their data fds: stop, and the thread-mode and
// tick wake-ups. A signalled eventfd stays readable until drained.
#include <unistd.h>

#include <cstdint>

namespace flannelts {

inline void SignalEventFd(int fd) {
  const uint64_t one = 1;
  ssize_t ignored = write(fd, &one, sizeof one);
  (void)ignored;
}

inline void DrainEventFd(int fd) {
  uint64_t v;
  ssize_t ignored = read(fd, &v, sizeof v);
  (void)ignored;
}

}  // namespace flannelts
