#pragma once
// One WireGuard peer's state, owned by whoever holds the shared_ptr (the Device's peer table, and the
// engine's per-peer state hook, keyed by the public key): static keys, the handshake in progress,
// its cookie, three keypair slots, the timer machine, the endpoint it was last heard from, byte
// counters and the small queue of packets waiting for a handshake. The Device does all the work
// under the peer's lock; Peer exposes only what status and the engine read.
#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <vector>

#include "cookie.h"
#include "keypair.h"
#include "messages.h"
#include "noise.h"
#include "timers.h"

namespace flannelts {
namespace wg {

// How the TypeScript side configures a peer (what `wg set` or flannel's addPeer says).
struct PeerConfig {
  uint8_t publicKey[kKeyLen] = {};
  uint8_t psk[kKeyLen] = {};  // zeros: no preshared key
  Endpoint endpoint;          // family 0: none yet (learnt from the peer's first handshake)
  uint32_t persistentKeepalive = 0;  // seconds, 0 = off
};

// What `wg show` and flannelctl status read.
struct PeerStats {
  uint64_t txBytes = 0;
  uint64_t rxBytes = 0;
  int64_t lastHandshakeWallNs = 0;  // 0 = never
  Endpoint endpoint;
  uint32_t persistentKeepalive = 0;
  uint32_t handshakeAttempts = 0;
  size_t staged = 0;
  bool hasCurrent = false;
  bool hasNext = false;
  bool hasPrevious = false;
};

class Peer : public std::enable_shared_from_this<Peer> {
 public:
  // At most this many packets wait for a handshake; the oldest is dropped beyond (wireguard-go's
  // QueueStagedSize).
  static constexpr size_t kMaxStaged = 128;

  Peer(const StaticIdentity& id, const PeerConfig& cfg, const Timing* timing);
  Peer(const Peer&) = delete;
  Peer& operator=(const Peer&) = delete;
  ~Peer();

  const uint8_t* PublicKey() const { return keys_.remoteStatic; }
  PeerStats Stats() const;

 private:
  friend class Device;

  mutable std::mutex mu_;
  PeerKeys keys_;
  HandshakeState hs_;
  bool sentHandshake_ = false;
  bool initiationPending_ = false;  // Output::DeferInitiation took a request not yet made
  int64_t lastSentHandshake_ = 0;
  uint8_t lastTimestamp_[kTimestampLen] = {};
  bool consumedInitiation_ = false;
  int64_t lastInitiationConsumption_ = 0;
  CookieGenerator cookie_;
  Keypairs keypairs_;
  PeerTimers timers_;
  Endpoint endpoint_;
  uint32_t keepalive_ = 0;
  std::deque<std::vector<uint8_t>> staged_;
  bool removed_ = false;
  std::atomic<uint64_t> txBytes_{0};
  std::atomic<uint64_t> rxBytes_{0};
  std::atomic<int64_t> lastHandshakeWallNs_{0};
};

}  // namespace wg
}  // namespace flannelts
