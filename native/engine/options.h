#pragma once
// What an engine is made of and how it behaves: the devices to open (or adopt: the test seam), the
// wire format, and the knobs of the data-plane threads.
#include <functional>
#include <memory>

#include "encap/encapsulation.h"
#include "engine/thread_mode.h"
#include "io/tun_device.h"
#include "io/udp_conn.h"

namespace flannelts {

// Makes the wire format once the sockets exist (VXLAN spreads flows over UdpConn's send-only sockets).
using EncapFactory = std::function<std::unique_ptr<Encapsulation>(const UdpConn&)>;

// 300 us covers an answer from a peer on the same LAN segment or host (about 60 us in the netns lab);
// farther answers shrink the window to nothing (reply_poll.h), so they cost almost no polling.
constexpr int kDefaultReplyPollUs = 300;
constexpr int kMaxReplyPollUs = 10000;

// How an engine behaves on the devices it is given.
struct EngineConfig {
  bool allowUnknownSource = false;  // peers behind NAT: skip the outer-source check
  // The wire format (encap/); empty: flannel-udp.
  EncapFactory encap;
  // After a small send the TX thread polls for the answer this long at most (adaptive, see
  // reply_poll.h); 0 turns reply polling off.
  int replyPollUs = kDefaultReplyPollUs;
  // 0: one thread for both directions, two while both are busy (thread_mode.h); 1 or 2: fixed.
  int dataThreads = 0;
  // Automatic mode: split at this much busy time per window (thread_mode.h); lower only in tests.
  int splitAtPercent = ThreadModeDecider::kDefaultSplitAtPercent;
};

// An engine and the devices to open for it (Engine::Open).
struct EngineOptions {
  TunOptions tun;
  // Test seam: an open, non-blocking TUN(-like) fd with the offloads already negotiated on it, used
  // instead of opening tun.name (see TunDevice::Adopt: the engine works on a duplicate; the caller
  // closes its own fd). -1: open a TUN.
  int tunFd = -1;
  TunOffloads tunOffloads;
  UdpOptions udp;  // adoptFd4/adoptFd6: the same seam for the sockets
  EngineConfig engine;
};

}  // namespace flannelts
