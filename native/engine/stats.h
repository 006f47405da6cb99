#pragma once
// What Engine::Stats() reports: totals, drops by reason, per-peer counters, offloads, reply polling,
// the thread mode and the capture. A snapshot of atomics, read on demand by the control thread.
#include <cstdint>
#include <string>
#include <vector>

#include "base/drop_reasons.h"

namespace flannelts {

// The data-plane threads: the mode asked for (0 auto, 1, 2), how many carry packets now, and how often
// the automatic mode split into two and merged back into one.
struct ThreadModeCounters {
  int mode, current;
  uint64_t splits, merges;
};

// Reply polling (PollAfterWork): windows that caught an answer, windows that ran out empty, and small
// sends after which the shrunken window said not to poll.
struct ReplyPollCounters {
  int windowUs;
  uint64_t hits, misses, skipped;
};

// Which offloads are in effect (requested and accepted by the kernel); udpGso can turn off later.
struct OffloadState {
  bool vnetHdr, tso, uso, udpGso, udpGro;
};

struct OffloadCounters {
  uint64_t gsoPackets, gsoSegments;   // super-packets from the TUN split, segments they made
  uint64_t udpGsoSends;               // sendmsg calls carrying more than one segment
  uint64_t groPackets, groSegments;   // super-packets written to the TUN, segments merged into them
  uint64_t udpGroBatches;             // receive buffers the kernel had coalesced
};

struct PeerStats {
  std::string subnet, publicIp, mac;
  uint16_t port;
  uint64_t txPackets, txBytes, rxPackets, rxBytes;
  int64_t lastRxMs;  // wall-clock ms of the last packet accepted from the peer; 0 = never
};

// A capture's progress: records kept so far, and those the full buffer could not take.
struct CaptureCounters {
  bool active;
  uint64_t recorded, lost;
};

struct EngineStats {
  uint64_t txPackets, txBytes, rxPackets, rxBytes;
  uint64_t drops[kDropCount];
  uint64_t arpReplies;
  OffloadState offloads;
  OffloadCounters offload;
  ReplyPollCounters replyPoll;
  ThreadModeCounters threads;
  std::string offloadNotes;
  std::vector<PeerStats> peers;
  bool captureActive;
  uint64_t captureLost;  // over every capture since start
};

}  // namespace flannelts
