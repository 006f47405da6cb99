// Handshake messages in and out (wireguard-go device/receive.go RoutineHandshake, send.go
// SendHandshakeInitiation/Response, noise-protocol.go BeginSymmetricSession), on the Device's tables.
#include <cstring>

#include "device.h"

namespace flannelts {
namespace wg {

namespace {

Reason FromNoise(NoiseError e) {
  switch (e) {
    case NoiseError::kStaticDecrypt: return Reason::kStaticDecrypt;
    case NoiseError::kTimestampDecrypt: return Reason::kTimestampDecrypt;
    case NoiseError::kWrongStage: return Reason::kHandshakeState;
    case NoiseError::kResponseDecrypt: return Reason::kResponseDecrypt;
    default: return Reason::kDhFailed;
  }
}

}  // namespace

void Device::SendTo(Peer& p, const uint8_t* d, size_t n, Output& out) {
  if (!p.endpoint_.family) {
    CountReason(Reason::kNoEndpoint);
    return;
  }
  out.SendOwn(p.endpoint_, d, n);
  p.txBytes_.fetch_add(n, std::memory_order_relaxed);
}

// A fresh ephemeral key and receiver index for a handshake message that make() writes, then MAC1
// and MAC2. The ephemeral key is drawn before the index: the order tests inject them in.
template <typename Make>
bool Device::NewHandshakeMessage(Peer& p, uint8_t* msg, size_t n, const Now& now, Make make) {
  std::shared_ptr<Peer> self = Self(p);
  if (!self) return false;
  uint8_t ephemeral[kKeyLen];
  Random(ephemeral, sizeof ephemeral);
  DropIndex(p.hs_.localIndex);
  const uint32_t index = NewIndex(self);
  const NoiseError err = make(ephemeral, index);
  Wipe(ephemeral, sizeof ephemeral);
  if (err != NoiseError::kOk) {
    DropIndex(index);
    p.hs_.Clear();
    CountReason(FromNoise(err));
    return false;
  }
  p.cookie_.AddMacs(msg, n, now.mono, timing_.cookieRefreshTime);
  return true;
}

void Device::SendInitiation(Peer& p, const Now& now, bool isRetry, Output& out) {
  if (!isRetry) p.timers_.ResetAttempts();
  if (p.sentHandshake_ && now.mono - p.lastSentHandshake_ < timing_.rekeyTimeout) return;  // one per REKEY_TIMEOUT
  if (!p.keys_.staticStaticOk || !hasKey_ || p.initiationPending_) return;
  if (out.DeferInitiation(Self(p))) {
    p.initiationPending_ = true;
    return;
  }
  MakeInitiation(p, now, out);
}

void Device::Initiate(Peer& p, const Now& now, Output& out) {
  Locked lock(*this, p);
  p.initiationPending_ = false;
  if (p.removed_) return;
  // Between the request and now a response of ours may have counted as this REKEY_TIMEOUT's handshake.
  if (p.sentHandshake_ && now.mono - p.lastSentHandshake_ < timing_.rekeyTimeout) return;
  if (!p.keys_.staticStaticOk || !hasKey_) return;
  MakeInitiation(p, now, out);
}

void Device::MakeInitiation(Peer& p, const Now& now, Output& out) {
  p.sentHandshake_ = true;
  p.lastSentHandshake_ = now.mono;

  uint8_t timestamp[kTimestampLen], msg[kInitiationSize];
  Tai64n(now.wall, timestamp);
  const bool made = NewHandshakeMessage(p, msg, sizeof msg, now, [&](const uint8_t* ephemeral, uint32_t index) {
    return CreateInitiation(identity_, p.keys_, ephemeral, timestamp, index, &p.hs_, msg);
  });
  if (!made) return;
  p.timers_.AnyAuthenticatedPacketTraversal(now.mono, p.keepalive_);
  p.timers_.AnyAuthenticatedPacketSent();
  SendTo(p, msg, sizeof msg, out);
  p.timers_.HandshakeInitiated(now.mono, Jitter());
}

RxResult Device::ReceiveInitiation(uint8_t* d, const Endpoint& from, const Now& now, bool underLoad, Output& out) {
  InitiationView v;
  NoiseError err = OpenInitiationStatic(identity_, d, &v);
  if (err != NoiseError::kOk) {
    v.Wipe();
    return Drop(FromNoise(err));
  }
  std::shared_ptr<Peer> sp = FindPeer(v.peerStatic);
  if (!sp) {
    v.Wipe();
    return Drop(Reason::kUnknownPeer);
  }
  Peer& p = *sp;
  Locked lock(*this, p);
  if (p.removed_) return Drop(Reason::kUnknownPeer);
  err = OpenInitiationTimestamp(p.keys_, d, &v);
  if (err != NoiseError::kOk) {
    v.Wipe();
    return Drop(FromNoise(err));
  }
  // Replay: the timestamp must be newer than any accepted before. Flood: one per 20 ms.
  if (std::memcmp(v.timestamp, p.lastTimestamp_, kTimestampLen) <= 0) {
    v.Wipe();
    return Drop(Reason::kHandshakeReplay);
  }
  if (p.consumedInitiation_ && now.mono - p.lastInitiationConsumption_ <= timing_.handshakeInitiationRate) {
    v.Wipe();
    return Drop(Reason::kHandshakeFlood);
  }
  std::memcpy(p.lastTimestamp_, v.timestamp, kTimestampLen);
  p.consumedInitiation_ = true;
  p.lastInitiationConsumption_ = now.mono;
  if (KeepOwnInitiation(p, from, now)) {
    v.Wipe();
    p.endpoint_ = from;
    p.rxBytes_.fetch_add(kInitiationSize, std::memory_order_relaxed);
    return Handled(Reason::kInitiationCrossed, sp);
  }
  CommitInitiation(v, &p.hs_);
  v.Wipe();

  p.timers_.AnyAuthenticatedPacketTraversal(now.mono, p.keepalive_);
  p.timers_.AnyAuthenticatedPacketReceived();
  p.endpoint_ = from;
  p.rxBytes_.fetch_add(kInitiationSize, std::memory_order_relaxed);
  SendResponse(p, now, out);
  return Handled(Reason::kInitiation, sp);
}

// Crossed initiations: both sides sent one at once (two pods ping each other first). WireGuard keeps
// only the handshake it consumed last, so each side would reject the response to its own initiation
// and both would wait REKEY_TIMEOUT (5 s) before trying again. The side with the greater static key
// keeps its own initiation pending instead and lets the other side answer it: a peer of ours with the
// smaller key answers, and so does a stock peer (kernel, wireguard-go), which consumes ours either way.
// The initiation was authenticated (static key and a newer timestamp) before we get here, so its
// timestamp and address count; a lost initiation of ours costs the same 5 s as without this rule.
// Only when the peer's initiation comes from where ours went: from anywhere else (the peer moved, or
// answers from another port) ours may never arrive, so it is answered as WireGuard does.
bool Device::KeepOwnInitiation(const Peer& p, const Endpoint& from, const Now& now) const {
  return p.hs_.stage == HandshakeStage::kInitiationCreated && now.mono - p.lastSentHandshake_ < timing_.rekeyTimeout &&
         from == p.endpoint_ && std::memcmp(identity_.pub, p.keys_.remoteStatic, kKeyLen) > 0;
}

void Device::SendResponse(Peer& p, const Now& now, Output& out) {
  p.sentHandshake_ = true;
  p.lastSentHandshake_ = now.mono;
  uint8_t msg[kResponseSize];
  const bool made = NewHandshakeMessage(p, msg, sizeof msg, now, [&](const uint8_t* ephemeral, uint32_t index) {
    return CreateResponse(p.keys_, ephemeral, index, &p.hs_, msg);
  });
  if (!made) return;
  BeginSession(p, now);
  p.timers_.SessionDerived(now.mono);
  p.timers_.AnyAuthenticatedPacketTraversal(now.mono, p.keepalive_);
  p.timers_.AnyAuthenticatedPacketSent();
  SendTo(p, msg, sizeof msg, out);
}

RxResult Device::ReceiveResponse(uint8_t* d, const Endpoint& from, const Now& now, bool underLoad, Output& out) {
  IndexEntry e;
  const uint32_t receiver = Le32(d + kRespReceiver);
  if (!LookupIndex(receiver, &e) || e.keypair) return Drop(Reason::kUnknownReceiver);
  std::shared_ptr<Peer> sp = e.peer.lock();
  if (!sp) return Drop(Reason::kUnknownReceiver);
  Peer& p = *sp;
  Locked lock(*this, p);
  if (p.removed_ || p.hs_.localIndex != receiver) return Drop(Reason::kUnknownReceiver);
  const NoiseError err = ConsumeResponse(identity_, p.keys_, d, &p.hs_);
  if (err != NoiseError::kOk) return Drop(FromNoise(err));
  p.endpoint_ = from;
  p.rxBytes_.fetch_add(kResponseSize, std::memory_order_relaxed);
  p.timers_.AnyAuthenticatedPacketTraversal(now.mono, p.keepalive_);
  p.timers_.AnyAuthenticatedPacketReceived();
  BeginSession(p, now);
  p.timers_.SessionDerived(now.mono);
  p.timers_.HandshakeComplete();
  p.lastHandshakeWallNs_.store(now.wall, std::memory_order_relaxed);
  SendKeepalive(p, now, out);  // confirms the session to the responder; carries queued packets first
  return Handled(Reason::kResponse, sp);
}

RxResult Device::ReceiveCookieReply(uint8_t* d, Output& out) {
  IndexEntry e;
  if (!LookupIndex(Le32(d + kCookieReceiver), &e)) return Drop(Reason::kUnknownReceiver);
  std::shared_ptr<Peer> sp = e.peer.lock();
  if (!sp) return Drop(Reason::kUnknownReceiver);
  CookieOpenJob job;
  {
    std::lock_guard<std::mutex> lock(sp->mu_);
    if (sp->removed_ || !sp->cookie_.PrepareOpen(d, sp->keys_.remoteStatic, &job)) return Drop(Reason::kCookieUnexpected);
  }
  // Outside the peer's lock: the TypeScript answer (ConsumeCookie) takes it again.
  out.OpenCookie(job);
  return Handled(Reason::kCookieReply, sp);
}

void Device::BeginSession(Peer& p, const Now& now) {
  auto kp = std::make_shared<Keypair>();
  bool initiator = false;
  if (!DeriveTransportKeys(&p.hs_, kp->sendKey, kp->recvKey, &initiator)) return;
  kp->created = now.mono;
  kp->initiator = initiator;
  kp->localIndex = p.hs_.localIndex;
  kp->remoteIndex = p.hs_.remoteIndex;
  kp->replay.Reset();
  BindIndex(kp->localIndex, kp);
  p.hs_.localIndex = 0;

  Keypairs& k = p.keypairs_;
  if (initiator) {
    // An unconfirmed next keypair becomes previous; the old current goes.
    if (k.next) {
      KeypairRef old = std::move(k.previous);
      k.previous = std::move(k.next);
      DeleteKeypair(k.current);
      DeleteKeypair(old);
    } else {
      DeleteKeypair(k.previous);
      k.previous = std::move(k.current);
    }
    k.current = kp;
  } else {
    // The responder sends with current until the initiator proves it has the new keys.
    DeleteKeypair(k.next);
    k.next = kp;
    DeleteKeypair(k.previous);
  }
}

bool Device::ReceivedWithKeypair(Peer& p, const KeypairRef& kp) {
  Keypairs& k = p.keypairs_;
  if (!kp || k.next != kp) return false;
  DeleteKeypair(k.previous);
  k.previous = std::move(k.current);
  k.current = std::move(k.next);
  return true;
}

void Device::ZeroAndFlushAll(Peer& p) {
  DeleteKeypair(p.keypairs_.previous);
  DeleteKeypair(p.keypairs_.current);
  DeleteKeypair(p.keypairs_.next);
  DropIndex(p.hs_.localIndex);
  p.hs_.Clear();
  p.staged_.clear();
}

}  // namespace wg
}  // namespace flannelts
