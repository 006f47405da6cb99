#pragma once
// Least privilege once setup is done: every thread of the process keeps exactly the capabilities
// asked for (see caps.cc for how, without libcap).
#include <sys/types.h>

#include <cstdint>
#include <vector>

namespace flannelts {

struct DroppedCapabilities {
  int threads;                   // threads that dropped (the calling one included)
  std::vector<pid_t> unreached;  // threads that still hold more than keep (they block the signal)
};

// The highest capability number this kernel knows (/proc/sys/kernel/cap_last_cap, at most 63).
int LastCapability();
// keep: a bit per capability number. Throws std::runtime_error when a thread could not drop.
DroppedCapabilities DropCapabilities(uint64_t keep);

}  // namespace flannelts
