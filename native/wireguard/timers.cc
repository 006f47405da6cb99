// The expiry rules of wireguard-go's expired* functions, without its goroutines.
#include "timers.h"

#include <climits>
#include <initializer_list>

namespace flannelts {
namespace wg {

Timing Timing::Scaled(int64_t divisor) const {
  Timing s = *this;
  if (divisor <= 1) return s;
  for (int64_t* d : {&s.rekeyAfterTime, &s.rejectAfterTime, &s.rekeyAttemptTime, &s.rekeyTimeout, &s.rekeyTimeoutJitterMax,
                     &s.keepaliveTimeout, &s.cookieRefreshTime, &s.handshakeInitiationRate, &s.keepaliveUnit}) {
    *d /= divisor;
    if (*d < 1) *d = 1;
  }
  return s;
}

void PeerTimers::DataSent(int64_t now, int64_t jitter) {
  if (!newHandshake_) newHandshake_ = now + t_->keepaliveTimeout + t_->rekeyTimeout + jitter;
}

void PeerTimers::DataReceived(int64_t now) {
  if (!sendKeepalive_) {
    sendKeepalive_ = now + t_->keepaliveTimeout;
  } else {
    needAnotherKeepalive_ = true;
  }
}

void PeerTimers::HandshakeComplete() {
  retransmitHandshake_ = 0;
  handshakeAttempts_ = 0;
  sentLastMinuteHandshake_ = false;
}

void PeerTimers::AnyAuthenticatedPacketTraversal(int64_t now, uint32_t keepaliveInterval) {
  if (keepaliveInterval > 0) persistentKeepalive_ = now + static_cast<int64_t>(keepaliveInterval) * t_->keepaliveUnit;
}

void PeerTimers::Stop() {
  retransmitHandshake_ = sendKeepalive_ = newHandshake_ = zeroKeyMaterial_ = persistentKeepalive_ = 0;
  handshakeAttempts_ = 0;
  needAnotherKeepalive_ = false;
  sentLastMinuteHandshake_ = false;
}

int64_t PeerTimers::NextDeadline() const {
  int64_t next = INT64_MAX;
  for (int64_t d : {retransmitHandshake_, sendKeepalive_, newHandshake_, zeroKeyMaterial_, persistentKeepalive_}) {
    if (d && d < next) next = d;
  }
  return next;
}

uint32_t PeerTimers::Expire(int64_t now) {
  uint32_t actions = 0;
  const auto due = [now](int64_t& d) {
    if (!d || d > now) return false;
    d = 0;
    return true;
  };
  if (due(retransmitHandshake_)) {
    if (handshakeAttempts_ > t_->MaxTimerHandshakes()) {
      // Gave up: no keepalive, queued packets dropped, and any half-finished state wiped later.
      actions |= kGiveUp;
      sendKeepalive_ = 0;
      if (!zeroKeyMaterial_) zeroKeyMaterial_ = now + t_->ZeroKeyMaterialAfter();
    } else {
      handshakeAttempts_++;
      actions |= kRetryInitiation;
    }
  }
  if (due(sendKeepalive_)) {
    actions |= kSendKeepalive;
    if (needAnotherKeepalive_) {
      needAnotherKeepalive_ = false;
      sendKeepalive_ = now + t_->keepaliveTimeout;
    }
  }
  if (due(newHandshake_)) actions |= kNewHandshake;
  if (due(zeroKeyMaterial_)) actions |= kZeroKeyMaterial;
  if (due(persistentKeepalive_)) actions |= kPersistentKeepalive;
  return actions;
}

}  // namespace wg
}  // namespace flannelts
