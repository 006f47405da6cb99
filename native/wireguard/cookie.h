#pragma once
// MAC1, MAC2 and cookies (the paper, 5.4.4 and 5.4.7; wireguard-go device/cookie.go).
// The checker is ours (validates what peers send us, makes cookies when under load); a generator per
// peer stamps what we send it and keeps the cookie it gave us. The cookie itself (keyed BLAKE2s of
// the sender's address under a secret rotated every COOKIE_REFRESH_TIME) is computed here; sealing it
// into a cookie reply needs XChaCha20-Poly1305, which OpenSSL lacks, so that step leaves as a job for
// the TypeScript side (libsodium) and comes back through CookieChecker::BuildReply /
// CookieGenerator::Consume.
#include <cstddef>
#include <cstdint>

#include "crypto.h"
#include "messages.h"

namespace flannelts {
namespace wg {

// Seal `cookie` with XChaCha20-Poly1305(key, nonce, aad), then BuildReply with the 32 sealed bytes.
struct CookieSealJob {
  Endpoint to;
  uint32_t receiver = 0;  // the sender index of the message we answer
  uint8_t key[kKeyLen] = {};
  uint8_t nonce[kXNonceLen] = {};
  uint8_t cookie[kMacLen] = {};
  uint8_t aad[kMacLen] = {};  // the MAC1 of the message we answer
};

// Open `sealed` with XChaCha20-Poly1305(key, nonce, aad), then CookieGenerator::Consume.
struct CookieOpenJob {
  uint8_t peer[kKeyLen] = {};  // the peer's public key: which generator gets the cookie
  uint8_t key[kKeyLen] = {};
  uint8_t nonce[kXNonceLen] = {};
  uint8_t sealed[kMacLen + kTagLen] = {};
  uint8_t aad[kMacLen] = {};  // the MAC1 we last sent that peer
};

// Keys both sides derive from a public key: MAC1's key HASH("mac1----" || pk) and the cookie
// encryption key HASH("cookie--" || pk).
void Mac1Key(const uint8_t pub[kKeyLen], uint8_t out[kKeyLen]);
void CookieKey(const uint8_t pub[kKeyLen], uint8_t out[kKeyLen]);

class CookieChecker {
 public:
  void Init(const uint8_t ourPub[kKeyLen]);
  // MAC1 of a handshake message (n = its full size) under our public key.
  bool CheckMac1(const uint8_t* msg, size_t n) const;
  // MAC2 under the cookie we would give `from` now; false when our secret is older than `refreshNs`.
  bool CheckMac2(const uint8_t* msg, size_t n, const Endpoint& from, int64_t nowNs, int64_t refreshNs) const;
  // A cookie reply for `msg` from `from`: the cookie, a fresh nonce, the key. Rotates the secret when
  // it is older than refreshNs.
  bool PrepareReply(const uint8_t* msg, size_t n, const Endpoint& from, int64_t nowNs, int64_t refreshNs,
                    RandomSource& random, CookieSealJob* job);
  // The 64-byte cookie reply message of a sealed job.
  static void BuildReply(const CookieSealJob& job, const uint8_t sealed[kMacLen + kTagLen], uint8_t out[kCookieReplySize]);

 private:
  void CookieFor(const Endpoint& from, uint8_t out[kMacLen]) const;
  uint8_t mac1Key_[kKeyLen] = {};
  uint8_t cookieKey_[kKeyLen] = {};
  uint8_t secret_[kKeyLen] = {};
  bool secretSet_ = false;
  int64_t secretAt_ = 0;
};

class CookieGenerator {
 public:
  void Init(const uint8_t peerPub[kKeyLen]);
  // Writes MAC1 (and MAC2 when we hold a fresh cookie from this peer) into a handshake message.
  void AddMacs(uint8_t* msg, size_t n, int64_t nowNs, int64_t refreshNs);
  // The job that opens a cookie reply from this peer; false when we never sent it a MAC1.
  bool PrepareOpen(const uint8_t reply[kCookieReplySize], const uint8_t peerPub[kKeyLen], CookieOpenJob* job) const;
  // Stores an opened cookie, if it answers the MAC1 we last sent (a late reply for an older message
  // is ignored).
  bool Consume(const uint8_t cookie[kMacLen], const uint8_t aad[kMacLen], int64_t nowNs);
  bool HasCookie(int64_t nowNs, int64_t refreshNs) const { return cookieSet_ && nowNs - cookieAt_ <= refreshNs; }

 private:
  uint8_t mac1Key_[kKeyLen] = {};
  uint8_t cookieKey_[kKeyLen] = {};
  uint8_t cookie_[kMacLen] = {};
  bool cookieSet_ = false;
  int64_t cookieAt_ = 0;
  bool hasLastMac1_ = false;
  uint8_t lastMac1_[kMacLen] = {};
};

}  // namespace wg
}  // namespace flannelts
