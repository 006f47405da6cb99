// The Device's tables (peers by key, receiver indices), configuration, dispatch of datagrams by
// message type, timers, and the cookie answers coming back from TypeScript.
#include "device.h"

#include <climits>
#include <cstring>

namespace flannelts {
namespace wg {

const char* ReasonName(Reason r) {
  static const char* const names[] = {
      "data", "keepalive", "initiation", "response", "cookie_reply", "cookie_sent", "initiation_crossed", "too_short", "unknown_type",
      "bad_length", "bad_mac1", "unknown_receiver", "expired_keypair", "decrypt_failed", "replay", "static_decrypt",
      "unknown_peer", "timestamp_decrypt", "handshake_replay", "handshake_flood", "handshake_state", "response_decrypt",
      "dh_failed", "cookie_unexpected", "sent", "queued", "queue_full", "gave_up", "no_endpoint", "too_big",
      "keepalive_sent"};
  static_assert(sizeof names / sizeof names[0] == static_cast<size_t>(Reason::kCount), "a name per reason");
  const size_t i = static_cast<size_t>(r);
  return i < static_cast<size_t>(Reason::kCount) ? names[i] : "unknown";
}

Peer::Peer(const StaticIdentity& id, const PeerConfig& cfg, const Timing* timing) : timers_(timing) {
  keys_.Set(id, cfg.publicKey, cfg.psk);
  cookie_.Init(cfg.publicKey);
  endpoint_ = cfg.endpoint;
  keepalive_ = cfg.persistentKeepalive;
}

Peer::~Peer() { hs_.Clear(); }

PeerStats Peer::Stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  PeerStats s;
  s.txBytes = txBytes_.load(std::memory_order_relaxed);
  s.rxBytes = rxBytes_.load(std::memory_order_relaxed);
  s.lastHandshakeWallNs = lastHandshakeWallNs_.load(std::memory_order_relaxed);
  s.endpoint = endpoint_;
  s.persistentKeepalive = keepalive_;
  s.handshakeAttempts = timers_.handshakeAttempts();
  s.staged = staged_.size();
  s.hasCurrent = keypairs_.current != nullptr;
  s.hasNext = keypairs_.next != nullptr;
  s.hasPrevious = keypairs_.previous != nullptr;
  return s;
}

Device::Device(const Timing& timing, RandomSource* rng) : timing_(timing), rng_(rng ? rng : &systemRandom_) {
  uint8_t seed[8];
  rng_->Fill(seed, sizeof seed);
  jitterState_.store(Le64(seed), std::memory_order_relaxed);
  Wipe(seed, sizeof seed);
}

Device::~Device() {
  Wipe(identity_.priv, sizeof identity_.priv);
}

void Device::Random(uint8_t* p, size_t n) {
  std::lock_guard<std::mutex> lock(rngMu_);
  rng_->Fill(p, n);
}

// Timer jitter needs spread, not secrecy: wireguard-go draws it from Go's fast non-cryptographic
// generator as well. It is drawn for every data packet that arms the new-handshake timer (each ping,
// each reply), and OpenSSL's DRBG there cost ~30 us when the thread had slept 10 ms (its state cold;
// measured on the lab VM against 1.3 us warm), twice on every ping's path. splitmix64 over an atomic
// counter: lock-free for data threads of different peers.
int64_t Device::Jitter() {
  if (timing_.rekeyTimeoutJitterMax <= 0) return 0;
  constexpr uint64_t kGamma = 0x9E3779B97F4A7C15ull;
  uint64_t z = jitterState_.fetch_add(kGamma, std::memory_order_relaxed) + kGamma;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<int64_t>(z % static_cast<uint64_t>(timing_.rekeyTimeoutJitterMax));
}

bool Device::SetPrivateKey(const uint8_t priv[kKeyLen]) {
  if (hasKey_ && Equal(priv, identity_.priv, kKeyLen)) return true;
  StaticIdentity next;
  if (!next.Set(priv)) return false;
  {
    std::unique_lock<std::shared_mutex> lock(peersMu_);
    identity_ = next;
    Wipe(next.priv, sizeof next.priv);
    hasKey_ = true;
    checker_.Init(identity_.pub);
  }
  // Sessions made with the old key are worthless, and a peer with our own key cannot exist. As
  // everywhere, a peer's lock is never taken with the table lock held.
  for (const std::shared_ptr<Peer>& sp : Peers()) {
    if (Equal(sp->keys_.remoteStatic, identity_.pub, kKeyLen)) {
      RemovePeer(sp->keys_.remoteStatic);
      continue;
    }
    std::lock_guard<std::mutex> pl(sp->mu_);
    ZeroAndFlushAll(*sp);
    sp->keys_.Set(identity_, sp->keys_.remoteStatic, sp->keys_.psk);
  }
  return true;
}

std::shared_ptr<Peer> Device::SetPeer(const PeerConfig& cfg, const Now& now, Output& out) {
  if (hasKey_ && Equal(cfg.publicKey, identity_.pub, kKeyLen)) return nullptr;  // as wireguard-go: ignored
  Key key;
  std::memcpy(key.data(), cfg.publicKey, kKeyLen);
  std::shared_ptr<Peer> p;
  {
    std::unique_lock<std::shared_mutex> lock(peersMu_);
    auto it = peers_.find(key);
    if (it == peers_.end()) {
      p = std::make_shared<Peer>(identity_, cfg, &timing_);
      peers_.emplace(key, p);
      return p;
    }
    p = it->second;
  }
  Locked pl(*this, *p);
  if (!Equal(p->keys_.psk, cfg.psk, kKeyLen)) std::memcpy(p->keys_.psk, cfg.psk, kKeyLen);
  if (cfg.endpoint.family) p->endpoint_ = cfg.endpoint;
  const bool keepaliveOn = p->keepalive_ == 0 && cfg.persistentKeepalive != 0;
  p->keepalive_ = cfg.persistentKeepalive;
  if (keepaliveOn) SendKeepalive(*p, now, out);
  return p;
}

bool Device::RemovePeer(const uint8_t pub[kKeyLen]) {
  Key key;
  std::memcpy(key.data(), pub, kKeyLen);
  std::shared_ptr<Peer> p;
  {
    std::unique_lock<std::shared_mutex> lock(peersMu_);
    auto it = peers_.find(key);
    if (it == peers_.end()) return false;
    p = it->second;
    peers_.erase(it);
  }
  std::lock_guard<std::mutex> pl(p->mu_);
  ZeroAndFlushAll(*p);
  p->removed_ = true;
  p->timers_.Stop();
  return true;
}

std::shared_ptr<Peer> Device::FindPeer(const uint8_t pub[kKeyLen]) const {
  Key key;
  std::memcpy(key.data(), pub, kKeyLen);
  std::shared_lock<std::shared_mutex> lock(peersMu_);
  auto it = peers_.find(key);
  return it == peers_.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<Peer>> Device::Peers() const {
  std::shared_lock<std::shared_mutex> lock(peersMu_);
  std::vector<std::shared_ptr<Peer>> v;
  v.reserve(peers_.size());
  for (const auto& kv : peers_) v.push_back(kv.second);
  return v;
}

// Without the table lock: callers hold the peer's lock, and the two are never held together.
std::shared_ptr<Peer> Device::Self(Peer& p) const { return p.shared_from_this(); }

uint32_t Device::NewIndex(const std::shared_ptr<Peer>& p) {
  for (;;) {
    uint8_t b[4];
    Random(b, sizeof b);
    const uint32_t index = Le32(b);
    if (index == 0) continue;  // 0 marks "no index" in HandshakeState
    std::unique_lock<std::shared_mutex> lock(indexMu_);
    if (index_.count(index)) continue;
    index_.emplace(index, IndexEntry{p, nullptr});
    return index;
  }
}

void Device::DropIndex(uint32_t index) {
  if (!index) return;
  std::unique_lock<std::shared_mutex> lock(indexMu_);
  index_.erase(index);
}

void Device::BindIndex(uint32_t index, const KeypairRef& kp) {
  std::unique_lock<std::shared_mutex> lock(indexMu_);
  auto it = index_.find(index);
  if (it != index_.end()) it->second.keypair = kp;
}

bool Device::LookupIndex(uint32_t index, IndexEntry* e) const {
  std::shared_lock<std::shared_mutex> lock(indexMu_);
  auto it = index_.find(index);
  if (it == index_.end()) return false;
  *e = it->second;
  return true;
}

void Device::DeleteKeypair(KeypairRef& kp) {
  if (!kp) return;
  DropIndex(kp->localIndex);
  kp.reset();
}

RxResult Device::Drop(Reason r) {
  CountReason(r);
  RxResult res;
  res.verdict = Verdict::kDrop;
  res.reason = r;
  return res;
}

RxResult Device::Handled(Reason r, std::shared_ptr<Peer> peer) {
  CountReason(r);
  RxResult res;
  res.verdict = Verdict::kHandled;
  res.reason = r;
  res.peer = std::move(peer);
  return res;
}

RxResult Device::Receive(uint8_t* d, size_t n, const Endpoint& from, const Now& now, bool underLoad, Output& out) {
  if (n < kTransportMin) return Drop(Reason::kTooShort);
  if (!hasKey_) return Drop(Reason::kStaticDecrypt);
  switch (Le32(d)) {
    case kTransport:
      return ReceiveData(d, n, from, now, out);
    case kInitiation:
      if (n != kInitiationSize) return Drop(Reason::kBadLength);
      if (!checker_.CheckMac1(d, n)) return Drop(Reason::kBadMac1);
      if (NeedsCookie(d, n, from, now, underLoad, out)) return Handled(Reason::kCookieSent, nullptr);
      return ReceiveInitiation(d, from, now, underLoad, out);
    case kResponse:
      if (n != kResponseSize) return Drop(Reason::kBadLength);
      if (!checker_.CheckMac1(d, n)) return Drop(Reason::kBadMac1);
      if (NeedsCookie(d, n, from, now, underLoad, out)) return Handled(Reason::kCookieSent, nullptr);
      return ReceiveResponse(d, from, now, underLoad, out);
    case kCookieReply:
      if (n != kCookieReplySize) return Drop(Reason::kBadLength);
      return ReceiveCookieReply(d, out);
    default:
      return Drop(Reason::kUnknownType);
  }
}

bool Device::NeedsCookie(uint8_t* d, size_t n, const Endpoint& from, const Now& now, bool underLoad, Output& out) {
  if (!underLoad) return false;
  // rngMu_ also guards the checker's secret, which PrepareReply rotates.
  std::lock_guard<std::mutex> lock(rngMu_);
  if (checker_.CheckMac2(d, n, from, now.mono, timing_.cookieRefreshTime)) return false;
  CookieSealJob job;
  if (checker_.PrepareReply(d, n, from, now.mono, timing_.cookieRefreshTime, *rng_, &job)) out.SealCookie(job);
  return true;
}

bool Device::CompleteCookieSeal(const CookieSealJob& job, const uint8_t sealed[kMacLen + kTagLen], Output& out) {
  if (!job.to.family) return false;
  uint8_t msg[kCookieReplySize];
  CookieChecker::BuildReply(job, sealed, msg);
  out.SendOwn(job.to, msg, sizeof msg);
  return true;
}

bool Device::ConsumeCookie(const uint8_t pub[kKeyLen], const uint8_t cookie[kMacLen], const uint8_t aad[kMacLen], const Now& now) {
  std::shared_ptr<Peer> p = FindPeer(pub);
  if (!p) return false;
  std::lock_guard<std::mutex> lock(p->mu_);
  return p->cookie_.Consume(cookie, aad, now.mono);
}

void Device::Tick(const Now& now, Output& out) {
  // Made exact again: every peer's deadline after its timers ran. A peer armed concurrently (after
  // the reset) lowers it itself; one armed before is seen by the visit below.
  earliest_.store(INT64_MAX, std::memory_order_relaxed);
  for (const std::shared_ptr<Peer>& sp : Peers()) {
    Peer& p = *sp;
    std::lock_guard<std::mutex> lock(p.mu_);
    if (p.removed_) continue;
    const uint32_t a = p.timers_.Expire(now.mono);
    if (a & kRetryInitiation) SendInitiation(p, now, true, out);
    if (a & kGiveUp) {
      for (size_t i = 0; i < p.staged_.size(); i++) CountReason(Reason::kGaveUp);
      p.staged_.clear();
    }
    if (a & kSendKeepalive) SendKeepalive(p, now, out);
    if (a & kNewHandshake) SendInitiation(p, now, false, out);
    if (a & kZeroKeyMaterial) ZeroAndFlushAll(p);
    if ((a & kPersistentKeepalive) && p.keepalive_ > 0) SendKeepalive(p, now, out);
    Publish(p, false);  // the ticking thread computes its next timeout from this itself
  }
}

void Device::Publish(const Peer& p, bool wake) {
  const int64_t d = p.timers_.NextDeadline();
  int64_t cur = earliest_.load(std::memory_order_relaxed);
  while (d < cur) {
    if (earliest_.compare_exchange_weak(cur, d, std::memory_order_relaxed)) {
      if (wake) lowered_.store(true, std::memory_order_relaxed);
      return;
    }
  }
}

int64_t Device::NextDeadline() const {
  int64_t next = INT64_MAX;
  for (const std::shared_ptr<Peer>& p : Peers()) {
    std::lock_guard<std::mutex> lock(p->mu_);
    const int64_t d = p->timers_.NextDeadline();
    if (d < next) next = d;
  }
  return next;
}

}  // namespace wg
}  // namespace flannelts
