// MAC1 covers the message up to MAC1; MAC2 covers it up to MAC2 (MAC1 included). Both are keyed
// BLAKE2s-128.
#include "cookie.h"

#include <cstring>

namespace flannelts {
namespace wg {

namespace {

void LabelHash(const char* label, const uint8_t pub[kKeyLen], uint8_t out[kKeyLen]) {
  Blake2s256(out, {{reinterpret_cast<const uint8_t*>(label), 8}, {pub, kKeyLen}});
}

}  // namespace

void Mac1Key(const uint8_t pub[kKeyLen], uint8_t out[kKeyLen]) { LabelHash("mac1----", pub, out); }
void CookieKey(const uint8_t pub[kKeyLen], uint8_t out[kKeyLen]) { LabelHash("cookie--", pub, out); }

void CookieChecker::Init(const uint8_t ourPub[kKeyLen]) {
  Mac1Key(ourPub, mac1Key_);
  CookieKey(ourPub, cookieKey_);
  secretSet_ = false;
}

bool CookieChecker::CheckMac1(const uint8_t* msg, size_t n) const {
  if (n < 2 * kMacLen) return false;
  uint8_t mac[kMacLen];
  if (!Blake2sMac(mac, kMacLen, mac1Key_, kKeyLen, {{msg, n - 2 * kMacLen}})) return false;
  return Equal(mac, msg + n - 2 * kMacLen, kMacLen);
}

void CookieChecker::CookieFor(const Endpoint& from, uint8_t out[kMacLen]) const {
  uint8_t src[18];
  const size_t len = from.Bytes(src);
  Blake2sMac(out, kMacLen, secret_, kKeyLen, {{src, len}});
}

bool CookieChecker::CheckMac2(const uint8_t* msg, size_t n, const Endpoint& from, int64_t nowNs, int64_t refreshNs) const {
  if (n < 2 * kMacLen || !secretSet_ || nowNs - secretAt_ > refreshNs) return false;
  uint8_t cookie[kMacLen], mac[kMacLen];
  CookieFor(from, cookie);
  const bool ok = Blake2sMac(mac, kMacLen, cookie, kMacLen, {{msg, n - kMacLen}});
  Wipe(cookie, sizeof cookie);
  return ok && Equal(mac, msg + n - kMacLen, kMacLen);
}

bool CookieChecker::PrepareReply(const uint8_t* msg, size_t n, const Endpoint& from, int64_t nowNs, int64_t refreshNs,
                                 RandomSource& random, CookieSealJob* job) {
  if (n < 2 * kMacLen + 8) return false;
  if (!secretSet_ || nowNs - secretAt_ > refreshNs) {
    random.Fill(secret_, kKeyLen);
    secretSet_ = true;
    secretAt_ = nowNs;
  }
  job->to = from;
  job->receiver = Le32(msg + 4);  // both handshake messages carry their sender index at offset 4
  std::memcpy(job->key, cookieKey_, kKeyLen);
  random.Fill(job->nonce, kXNonceLen);
  CookieFor(from, job->cookie);
  std::memcpy(job->aad, msg + n - 2 * kMacLen, kMacLen);
  return true;
}

void CookieChecker::BuildReply(const CookieSealJob& job, const uint8_t sealed[kMacLen + kTagLen], uint8_t out[kCookieReplySize]) {
  PutLe32(out, kCookieReply);
  PutLe32(out + kCookieReceiver, job.receiver);
  std::memcpy(out + kCookieNonce, job.nonce, kXNonceLen);
  std::memcpy(out + kCookieSealed, sealed, kMacLen + kTagLen);
}

void CookieGenerator::Init(const uint8_t peerPub[kKeyLen]) {
  Mac1Key(peerPub, mac1Key_);
  CookieKey(peerPub, cookieKey_);
  cookieSet_ = false;
  hasLastMac1_ = false;
}

void CookieGenerator::AddMacs(uint8_t* msg, size_t n, int64_t nowNs, int64_t refreshNs) {
  uint8_t* mac1 = msg + n - 2 * kMacLen;
  uint8_t* mac2 = msg + n - kMacLen;
  Blake2sMac(mac1, kMacLen, mac1Key_, kKeyLen, {{msg, n - 2 * kMacLen}});
  std::memcpy(lastMac1_, mac1, kMacLen);
  hasLastMac1_ = true;
  if (HasCookie(nowNs, refreshNs)) {
    Blake2sMac(mac2, kMacLen, cookie_, kMacLen, {{msg, n - kMacLen}});
  } else {
    std::memset(mac2, 0, kMacLen);
  }
}

bool CookieGenerator::PrepareOpen(const uint8_t reply[kCookieReplySize], const uint8_t peerPub[kKeyLen], CookieOpenJob* job) const {
  if (!hasLastMac1_) return false;
  std::memcpy(job->peer, peerPub, kKeyLen);
  std::memcpy(job->key, cookieKey_, kKeyLen);
  std::memcpy(job->nonce, reply + kCookieNonce, kXNonceLen);
  std::memcpy(job->sealed, reply + kCookieSealed, kMacLen + kTagLen);
  std::memcpy(job->aad, lastMac1_, kMacLen);
  return true;
}

bool CookieGenerator::Consume(const uint8_t cookie[kMacLen], const uint8_t aad[kMacLen], int64_t nowNs) {
  if (!hasLastMac1_ || !Equal(aad, lastMac1_, kMacLen)) return false;
  std::memcpy(cookie_, cookie, kMacLen);
  cookieSet_ = true;
  cookieAt_ = nowNs;
  return true;
}

}  // namespace wg
}  // namespace flannelts
