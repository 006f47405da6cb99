#pragma once
// A session's transport keys (the paper, 5.4.5-5.4.6) and a peer's three slots for them: current
// (what we send with), previous (still accepted while the other side switches over) and next (a
// responder's fresh keypair, promoted once the initiator uses it: key confirmation).
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>

#include "crypto.h"
#include "replay.h"

namespace flannelts {
namespace wg {

struct Keypair {
  uint8_t sendKey[kKeyLen] = {};
  uint8_t recvKey[kKeyLen] = {};
  std::atomic<uint64_t> sendNonce{0};
  int64_t created = 0;  // monotonic ns
  bool initiator = false;
  uint32_t localIndex = 0;   // what the peer puts in the receiver field for us
  uint32_t remoteIndex = 0;  // what we put in the receiver field for the peer
  std::mutex replayMu;       // receive paths of several threads meet here
  ReplayFilter replay;

  Keypair() = default;
  Keypair(const Keypair&) = delete;
  Keypair& operator=(const Keypair&) = delete;
  ~Keypair() {
    Wipe(sendKey, sizeof sendKey);
    Wipe(recvKey, sizeof recvKey);
  }
};

using KeypairRef = std::shared_ptr<Keypair>;

struct Keypairs {
  KeypairRef previous;
  KeypairRef current;
  KeypairRef next;
};

}  // namespace wg
}  // namespace flannelts
