// Transport data in and out (wireguard-go device/send.go and receive.go): counters, padding, the
// replay window, key confirmation, roaming, rekey triggers and the queue of packets waiting for a
// handshake.
#include <cstring>

#include "device.h"

namespace flannelts {
namespace wg {

namespace {

// One ChaCha20-Poly1305 context per thread that seals or opens: contexts are not shareable, and
// creating one per packet would cost more than the packet.
Aead& ThreadAead() {
  static thread_local Aead aead;
  return aead;
}

// Pad to a multiple of 16, but never past the MTU (wireguard-go calculatePaddingSize).
size_t PaddedLength(size_t n, uint32_t mtu) {
  if (mtu == 0) return (n + kPaddingMultiple - 1) & ~(kPaddingMultiple - 1);
  size_t last = n;
  if (last > mtu) last %= mtu;
  size_t padded = (last + kPaddingMultiple - 1) & ~(kPaddingMultiple - 1);
  if (padded > mtu) padded = mtu;
  return n + (padded - last);
}

}  // namespace

bool Device::Usable(const KeypairRef& kp, const Now& now) const {
  return kp && kp->sendNonce.load(std::memory_order_relaxed) < timing_.rejectAfterMessages &&
         now.mono - kp->created < timing_.rejectAfterTime;
}

size_t Device::SealWith(Keypair& kp, uint64_t counter, uint8_t* buf, size_t innerLen) {
  const size_t padded = PaddedLength(innerLen, mtu_);
  std::memset(buf + kTransportHeader + innerLen, 0, padded - innerLen);
  PutLe32(buf, kTransport);
  PutLe32(buf + kDataReceiver, kp.remoteIndex);
  PutLe64(buf + kDataCounter, counter);
  uint8_t nonce[kNonceLen];
  CounterNonce(counter, nonce);
  if (!ThreadAead().Seal(kp.sendKey, nonce, buf + kTransportHeader, padded, nullptr, 0, buf + kTransportHeader)) return 0;
  return kTransportHeader + padded + kTagLen;
}

void Device::SentAuthenticated(Peer& p, const Now& now, bool data) {
  p.timers_.AnyAuthenticatedPacketTraversal(now.mono, p.keepalive_);
  p.timers_.AnyAuthenticatedPacketSent();
  // The jitter only when the timer is armed, not for every packet.
  if (data && !p.timers_.NewHandshakePending()) p.timers_.DataSent(now.mono, Jitter());
}

TxResult Device::Seal(Peer& p, uint8_t* buf, size_t innerLen, size_t cap, const Now& now, Output& out) {
  TxResult r;
  const size_t need = kTransportHeader + PaddedLength(innerLen, mtu_) + kTagLen;
  if (need > cap) {
    CountReason(r.reason = Reason::kTooBig);
    return r;
  }
  Locked lock(*this, p);
  if (p.removed_ || !p.endpoint_.family) {
    CountReason(r.reason = Reason::kNoEndpoint);
    return r;
  }
  KeypairRef kp = p.keypairs_.current;
  uint64_t counter = 0;
  const bool ready = p.staged_.empty() && Usable(kp, now) &&
                     (counter = kp->sendNonce.fetch_add(1, std::memory_order_relaxed)) < timing_.rejectAfterMessages;
  if (!ready) {
    if (kp && counter >= timing_.rejectAfterMessages) kp->sendNonce.store(timing_.rejectAfterMessages);
    Stage(p, buf + kTransportHeader, innerLen);
    SendStaged(p, now, out);  // sends them if a session is up after all, else starts a handshake
    r.verdict = Verdict::kQueued;
    CountReason(r.reason = Reason::kQueued);
    return r;
  }
  SentAuthenticated(p, now, true);
  // keepKeyFreshSending: rekey after REKEY_AFTER_MESSAGES, or REKEY_AFTER_TIME for the initiator.
  if (kp->sendNonce.load(std::memory_order_relaxed) > timing_.rekeyAfterMessages ||
      (kp->initiator && now.mono - kp->created > timing_.rekeyAfterTime)) {
    SendInitiation(p, now, false, out);
  }
  r.length = SealWith(*kp, counter, buf, innerLen);
  if (!r.length) {
    CountReason(r.reason = Reason::kTooBig);
    return r;
  }
  r.verdict = Verdict::kSend;
  r.to = p.endpoint_;
  p.txBytes_.fetch_add(r.length, std::memory_order_relaxed);
  CountReason(r.reason = Reason::kSent);
  return r;
}

void Device::Stage(Peer& p, const uint8_t* inner, size_t n) {
  if (p.staged_.size() >= Peer::kMaxStaged) {
    p.staged_.pop_front();
    CountReason(Reason::kQueueFull);
  }
  p.staged_.emplace_back(inner, inner + n);
}

void Device::SendStaged(Peer& p, const Now& now, Output& out) {
  if (p.staged_.empty()) return;
  KeypairRef kp = p.keypairs_.current;
  if (!Usable(kp, now)) {
    SendInitiation(p, now, false, out);
    return;
  }
  std::vector<uint8_t> buf;
  while (!p.staged_.empty()) {
    const uint64_t counter = kp->sendNonce.fetch_add(1, std::memory_order_relaxed);
    if (counter >= timing_.rejectAfterMessages) {
      kp->sendNonce.store(timing_.rejectAfterMessages);
      SendInitiation(p, now, false, out);
      return;
    }
    const std::vector<uint8_t>& inner = p.staged_.front();
    buf.assign(kTransportHeader + PaddedLength(inner.size(), mtu_) + kTagLen, 0);
    if (!inner.empty()) std::memcpy(buf.data() + kTransportHeader, inner.data(), inner.size());
    const size_t len = SealWith(*kp, counter, buf.data(), inner.size());
    const bool data = !inner.empty();
    p.staged_.pop_front();
    if (!len) continue;
    SentAuthenticated(p, now, data);
    SendTo(p, buf.data(), len, out);
    if (!data) CountReason(Reason::kKeepaliveSent);
  }
  if (kp->sendNonce.load(std::memory_order_relaxed) > timing_.rekeyAfterMessages ||
      (kp->initiator && now.mono - kp->created > timing_.rekeyAfterTime)) {
    SendInitiation(p, now, false, out);
  }
}

void Device::SendKeepalive(Peer& p, const Now& now, Output& out) {
  if (p.staged_.empty()) p.staged_.emplace_back();  // an empty packet is a keepalive
  SendStaged(p, now, out);
}

RxResult Device::ReceiveData(uint8_t* d, size_t n, const Endpoint& from, const Now& now, Output& out) {
  IndexEntry e;
  if (!LookupIndex(Le32(d + kDataReceiver), &e) || !e.keypair) return Drop(Reason::kUnknownReceiver);
  std::shared_ptr<Peer> sp = e.peer.lock();
  if (!sp) return Drop(Reason::kUnknownReceiver);
  Keypair& kp = *e.keypair;
  if (now.mono - kp.created > timing_.rejectAfterTime) return Drop(Reason::kExpiredKeypair);
  const uint64_t counter = Le64(d + kDataCounter);
  uint8_t nonce[kNonceLen];
  CounterNonce(counter, nonce);
  if (!ThreadAead().Open(kp.recvKey, nonce, d + kTransportHeader, n - kTransportHeader, nullptr, 0, d + kTransportHeader)) {
    return Drop(Reason::kDecryptFailed);
  }
  {
    std::lock_guard<std::mutex> rl(kp.replayMu);
    if (!kp.replay.Validate(counter, timing_.rejectAfterMessages)) return Drop(Reason::kReplay);
  }
  Peer& p = *sp;
  const size_t len = n - kTransportMin;
  Locked lock(*this, p);
  if (p.removed_) return Drop(Reason::kUnknownReceiver);
  p.endpoint_ = from;  // roaming: the last authenticated source is where the peer is
  if (ReceivedWithKeypair(p, e.keypair)) {
    p.timers_.HandshakeComplete();
    p.lastHandshakeWallNs_.store(now.wall, std::memory_order_relaxed);
    SendStaged(p, now, out);
  }
  p.rxBytes_.fetch_add(n, std::memory_order_relaxed);
  // keepKeyFreshReceiving: an initiator whose key nears REJECT_AFTER_TIME rekeys once, at 165 s.
  const KeypairRef& cur = p.keypairs_.current;
  if (cur && cur->initiator && now.mono - cur->created > timing_.RekeyOnReceiveAge() && !p.timers_.sentLastMinuteHandshake()) {
    p.timers_.SetSentLastMinuteHandshake();
    SendInitiation(p, now, false, out);
  }
  p.timers_.AnyAuthenticatedPacketTraversal(now.mono, p.keepalive_);
  p.timers_.AnyAuthenticatedPacketReceived();
  if (len == 0) return Handled(Reason::kKeepalive, sp);
  p.timers_.DataReceived(now.mono);
  CountReason(Reason::kData);
  RxResult r;
  r.verdict = Verdict::kInner;
  r.reason = Reason::kData;
  r.peer = sp;
  r.offset = kTransportHeader;
  r.length = len;
  return r;
}

}  // namespace wg
}  // namespace flannelts
