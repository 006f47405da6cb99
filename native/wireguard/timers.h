#pragma once
// WireGuard's per-peer timers (the paper, 6; wireguard-go device/timers.go) as a pure state machine:
// deadlines on a clock the caller passes in, events that arm or cancel them, and Expire(now), which
// says what fell due. The Device turns those into initiations, keepalives, flushes and key zeroing,
// so a test drives the whole machine with a fake clock and no threads.
#include <cstdint>

namespace flannelts {
namespace wg {

constexpr int64_t kSecond = 1000000000;
constexpr int64_t kMillisecond = 1000000;

// The protocol's constants (wireguard-go device/constants.go). Spec() is what the daemon runs;
// Scaled() is the documented test hook for shortened timers (see README.md): every duration divided
// by `divisor`, so a rekey or key zeroing can be watched in seconds. The message limits can be
// lowered too, to reach REKEY/REJECT_AFTER_MESSAGES in a test.
struct Timing {
  uint64_t rekeyAfterMessages = uint64_t(1) << 60;
  uint64_t rejectAfterMessages = ~uint64_t(0) - (uint64_t(1) << 13);  // 2^64 - 2^13 - 1
  int64_t rekeyAfterTime = 120 * kSecond;
  int64_t rejectAfterTime = 180 * kSecond;
  int64_t rekeyAttemptTime = 90 * kSecond;
  int64_t rekeyTimeout = 5 * kSecond;
  int64_t rekeyTimeoutJitterMax = 334 * kMillisecond;
  int64_t keepaliveTimeout = 10 * kSecond;
  int64_t cookieRefreshTime = 120 * kSecond;
  int64_t handshakeInitiationRate = 20 * kMillisecond;  // at most one initiation consumed per peer per 20 ms
  int64_t keepaliveUnit = kSecond;                       // PersistentKeepaliveInterval is in these units

  static Timing Spec() { return Timing{}; }
  Timing Scaled(int64_t divisor) const;
  // REKEY_ATTEMPT_TIME / REKEY_TIMEOUT = 18 retries after the first initiation.
  uint32_t MaxTimerHandshakes() const { return static_cast<uint32_t>(rekeyAttemptTime / rekeyTimeout); }
  // The initiator rekeys on receive when its key is this old (165 s).
  int64_t RekeyOnReceiveAge() const { return rejectAfterTime - keepaliveTimeout - rekeyTimeout; }
  // All key material is wiped after this long without a new handshake (540 s).
  int64_t ZeroKeyMaterialAfter() const { return 3 * rejectAfterTime; }
};

// What fell due in Expire().
enum TimerAction : uint32_t {
  kRetryInitiation = 1 << 0,     // retransmit: send the initiation again (isRetry)
  kGiveUp = 1 << 1,              // REKEY_ATTEMPT_TIME passed: drop the queued packets
  kSendKeepalive = 1 << 2,       // KEEPALIVE_TIMEOUT after data received with nothing sent back
  kNewHandshake = 1 << 3,        // data sent, nothing heard for KEEPALIVE + REKEY_TIMEOUT: new handshake
  kZeroKeyMaterial = 1 << 4,     // 3 x REJECT_AFTER_TIME without a handshake: wipe every key
  kPersistentKeepalive = 1 << 5, // the configured interval passed without an authenticated packet
};

class PeerTimers {
 public:
  explicit PeerTimers(const Timing* t) : t_(t) {}

  // Events, named as wireguard-go's timers* functions. `jitter` is 0..rekeyTimeoutJitterMax.
  void DataSent(int64_t now, int64_t jitter);
  void DataReceived(int64_t now);
  void AnyAuthenticatedPacketSent() { sendKeepalive_ = 0; }
  void AnyAuthenticatedPacketReceived() { newHandshake_ = 0; }
  void HandshakeInitiated(int64_t now, int64_t jitter) { retransmitHandshake_ = now + t_->rekeyTimeout + jitter; }
  void HandshakeComplete();
  void SessionDerived(int64_t now) { zeroKeyMaterial_ = now + t_->ZeroKeyMaterialAfter(); }
  void AnyAuthenticatedPacketTraversal(int64_t now, uint32_t keepaliveInterval);
  // A fresh initiation (not a retry) restarts the attempt count.
  void ResetAttempts() { handshakeAttempts_ = 0; }
  void Stop();

  // The earliest pending deadline, or INT64_MAX when none is.
  int64_t NextDeadline() const;
  // Fires every deadline <= now (clearing it, re-arming what wireguard-go re-arms) and returns the
  // TimerAction bits for the caller to carry out.
  uint32_t Expire(int64_t now);

  uint32_t handshakeAttempts() const { return handshakeAttempts_; }
  bool sentLastMinuteHandshake() const { return sentLastMinuteHandshake_; }
  void SetSentLastMinuteHandshake() { sentLastMinuteHandshake_ = true; }
  bool KeepalivePending() const { return sendKeepalive_ != 0; }
  bool RetransmitPending() const { return retransmitHandshake_ != 0; }
  bool NewHandshakePending() const { return newHandshake_ != 0; }
  bool ZeroPending() const { return zeroKeyMaterial_ != 0; }
  bool PersistentPending() const { return persistentKeepalive_ != 0; }

 private:
  const Timing* t_;
  // Deadlines on the caller's clock; 0 = not pending.
  int64_t retransmitHandshake_ = 0;
  int64_t sendKeepalive_ = 0;
  int64_t newHandshake_ = 0;
  int64_t zeroKeyMaterial_ = 0;
  int64_t persistentKeepalive_ = 0;
  uint32_t handshakeAttempts_ = 0;
  bool needAnotherKeepalive_ = false;
  bool sentLastMinuteHandshake_ = false;
};

}  // namespace wg
}  // namespace flannelts
