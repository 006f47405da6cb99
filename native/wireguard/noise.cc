// The handshake's symmetric state (hash h, chaining key ck) as the paper writes it:
// MixHash(x): h = HASH(h || x); MixKey(x): ck = KDF1(ck, x); AEAD with a zero nonce and h as AD.
#include "noise.h"

#include <cstring>

namespace flannelts {
namespace wg {

namespace {

const char kConstruction[] = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";
const char kIdentifier[] = "WireGuard v1 zx2c4 Jason@zx2c4.com";

struct Initial {
  uint8_t chainKey[kKeyLen];
  uint8_t hash[kKeyLen];
  Initial() {
    Blake2s256(chainKey, {{reinterpret_cast<const uint8_t*>(kConstruction), sizeof kConstruction - 1}});
    Blake2s256(hash, {{chainKey, kKeyLen}, {reinterpret_cast<const uint8_t*>(kIdentifier), sizeof kIdentifier - 1}});
  }
};

const Initial& Init() {
  static const Initial init;
  return init;
}

const uint8_t kZeroNonce[kNonceLen] = {};

void MixHash(uint8_t h[kKeyLen], const uint8_t* data, size_t n) { Blake2s256(h, {{h, kKeyLen}, {data, n}}); }

void MixKey(uint8_t ck[kKeyLen], const uint8_t* data, size_t n) {
  uint8_t out[kKeyLen];
  Hkdf(out, nullptr, nullptr, ck, data, n);
  std::memcpy(ck, out, kKeyLen);
  Wipe(out, sizeof out);
}

// ck, key = KDF2(ck, input)
void MixKeyAndGetKey(uint8_t ck[kKeyLen], uint8_t key[kKeyLen], const uint8_t* input, size_t n) {
  uint8_t c[kKeyLen];
  Hkdf(c, key, nullptr, ck, input, n);
  std::memcpy(ck, c, kKeyLen);
  Wipe(c, sizeof c);
}

// MixKey(DH(priv, pub)); false when the DH result is zero.
bool MixDh(uint8_t ck[kKeyLen], const uint8_t priv[kKeyLen], const uint8_t pub[kKeyLen]) {
  uint8_t ss[kKeyLen];
  const bool ok = X25519(priv, pub, ss);
  if (ok) MixKey(ck, ss, kKeyLen);
  Wipe(ss, sizeof ss);
  return ok;
}

// ck, tau, key = KDF3(ck, psk); MixHash(tau)
void MixPsk(uint8_t ck[kKeyLen], uint8_t h[kKeyLen], uint8_t key[kKeyLen], const uint8_t psk[kKeyLen]) {
  uint8_t c[kKeyLen], tau[kKeyLen];
  Hkdf(c, tau, key, ck, psk, kKeyLen);
  std::memcpy(ck, c, kKeyLen);
  MixHash(h, tau, kKeyLen);
  Wipe(c, sizeof c);
  Wipe(tau, sizeof tau);
}

}  // namespace

const uint8_t* InitialChainKey() { return Init().chainKey; }
const uint8_t* InitialHash() { return Init().hash; }

const char* NoiseErrorName(NoiseError e) {
  switch (e) {
    case NoiseError::kOk: return "ok";
    case NoiseError::kDhFailed: return "dh_failed";
    case NoiseError::kStaticDecrypt: return "static_decrypt";
    case NoiseError::kTimestampDecrypt: return "timestamp_decrypt";
    case NoiseError::kNoStaticStatic: return "no_static_static";
    case NoiseError::kWrongStage: return "wrong_stage";
    case NoiseError::kResponseDecrypt: return "response_decrypt";
  }
  return "unknown";
}

bool StaticIdentity::Set(const uint8_t priv32[kKeyLen]) {
  std::memcpy(priv, priv32, kKeyLen);
  return X25519Public(priv, pub);
}

void PeerKeys::Set(const StaticIdentity& id, const uint8_t remoteStatic32[kKeyLen], const uint8_t psk32[kKeyLen]) {
  std::memcpy(remoteStatic, remoteStatic32, kKeyLen);
  std::memcpy(psk, psk32, kKeyLen);
  staticStaticOk = X25519(id.priv, remoteStatic, staticStatic);
}

void HandshakeState::Clear() {
  Wipe(hash, sizeof hash);
  Wipe(chainKey, sizeof chainKey);
  Wipe(localEphemeral, sizeof localEphemeral);
  Wipe(remoteEphemeral, sizeof remoteEphemeral);
  localIndex = 0;
  stage = HandshakeStage::kZeroed;
}

void InitiationView::Wipe() { wg::Wipe(this, sizeof *this); }

NoiseError CreateInitiation(const StaticIdentity& id, const PeerKeys& peer, const uint8_t ephemeralPriv[kKeyLen],
                            const uint8_t timestamp[kTimestampLen], uint32_t senderIndex, HandshakeState* hs,
                            uint8_t msg[kInitiationSize]) {
  if (!peer.staticStaticOk) return NoiseError::kNoStaticStatic;
  Aead aead;
  uint8_t key[kKeyLen];
  std::memset(msg, 0, kInitiationSize);
  std::memcpy(hs->chainKey, InitialChainKey(), kKeyLen);
  std::memcpy(hs->hash, InitialHash(), kKeyLen);
  std::memcpy(hs->localEphemeral, ephemeralPriv, kKeyLen);
  MixHash(hs->hash, peer.remoteStatic, kKeyLen);

  PutLe32(msg, kInitiation);
  PutLe32(msg + kInitSender, senderIndex);
  uint8_t* ephemeral = msg + kInitEphemeral;
  if (!X25519Public(hs->localEphemeral, ephemeral)) return NoiseError::kDhFailed;
  MixKey(hs->chainKey, ephemeral, kKeyLen);
  MixHash(hs->hash, ephemeral, kKeyLen);

  // static: AEAD(key from DH(e, S_r), our static public)
  uint8_t ss[kKeyLen];
  if (!X25519(hs->localEphemeral, peer.remoteStatic, ss)) return NoiseError::kDhFailed;
  MixKeyAndGetKey(hs->chainKey, key, ss, kKeyLen);
  Wipe(ss, sizeof ss);
  if (!aead.Seal(key, kZeroNonce, id.pub, kKeyLen, hs->hash, kKeyLen, msg + kInitStatic)) return NoiseError::kDhFailed;
  MixHash(hs->hash, msg + kInitStatic, kKeyLen + kTagLen);

  // timestamp: AEAD(key from DH(S_i, S_r), TAI64N)
  MixKeyAndGetKey(hs->chainKey, key, peer.staticStatic, kKeyLen);
  if (!aead.Seal(key, kZeroNonce, timestamp, kTimestampLen, hs->hash, kKeyLen, msg + kInitTimestamp)) return NoiseError::kDhFailed;
  MixHash(hs->hash, msg + kInitTimestamp, kTimestampLen + kTagLen);
  Wipe(key, sizeof key);

  hs->localIndex = senderIndex;
  hs->stage = HandshakeStage::kInitiationCreated;
  return NoiseError::kOk;
}

NoiseError OpenInitiationStatic(const StaticIdentity& id, const uint8_t msg[kInitiationSize], InitiationView* v) {
  Aead aead;
  uint8_t key[kKeyLen], ss[kKeyLen];
  v->sender = Le32(msg + kInitSender);
  std::memcpy(v->ephemeral, msg + kInitEphemeral, kKeyLen);
  std::memcpy(v->hash, InitialHash(), kKeyLen);
  MixHash(v->hash, id.pub, kKeyLen);
  MixHash(v->hash, v->ephemeral, kKeyLen);
  std::memcpy(v->chainKey, InitialChainKey(), kKeyLen);
  MixKey(v->chainKey, v->ephemeral, kKeyLen);
  if (!X25519(id.priv, v->ephemeral, ss)) return NoiseError::kDhFailed;
  MixKeyAndGetKey(v->chainKey, key, ss, kKeyLen);
  Wipe(ss, sizeof ss);
  const bool ok = aead.Open(key, kZeroNonce, msg + kInitStatic, kKeyLen + kTagLen, v->hash, kKeyLen, v->peerStatic);
  Wipe(key, sizeof key);
  if (!ok) return NoiseError::kStaticDecrypt;
  MixHash(v->hash, msg + kInitStatic, kKeyLen + kTagLen);
  return NoiseError::kOk;
}

NoiseError OpenInitiationTimestamp(const PeerKeys& peer, const uint8_t msg[kInitiationSize], InitiationView* v) {
  if (!peer.staticStaticOk) return NoiseError::kNoStaticStatic;
  Aead aead;
  uint8_t key[kKeyLen];
  MixKeyAndGetKey(v->chainKey, key, peer.staticStatic, kKeyLen);
  const bool ok = aead.Open(key, kZeroNonce, msg + kInitTimestamp, kTimestampLen + kTagLen, v->hash, kKeyLen, v->timestamp);
  Wipe(key, sizeof key);
  if (!ok) return NoiseError::kTimestampDecrypt;
  MixHash(v->hash, msg + kInitTimestamp, kTimestampLen + kTagLen);
  return NoiseError::kOk;
}

void CommitInitiation(const InitiationView& v, HandshakeState* hs) {
  std::memcpy(hs->hash, v.hash, kKeyLen);
  std::memcpy(hs->chainKey, v.chainKey, kKeyLen);
  std::memcpy(hs->remoteEphemeral, v.ephemeral, kKeyLen);
  hs->remoteIndex = v.sender;
  hs->stage = HandshakeStage::kInitiationConsumed;
}

NoiseError CreateResponse(const PeerKeys& peer, const uint8_t ephemeralPriv[kKeyLen], uint32_t senderIndex, HandshakeState* hs,
                          uint8_t msg[kResponseSize]) {
  if (hs->stage != HandshakeStage::kInitiationConsumed) return NoiseError::kWrongStage;
  Aead aead;
  uint8_t key[kKeyLen];
  std::memset(msg, 0, kResponseSize);
  PutLe32(msg, kResponse);
  PutLe32(msg + kRespSender, senderIndex);
  PutLe32(msg + kRespReceiver, hs->remoteIndex);
  std::memcpy(hs->localEphemeral, ephemeralPriv, kKeyLen);
  uint8_t* ephemeral = msg + kRespEphemeral;
  if (!X25519Public(hs->localEphemeral, ephemeral)) return NoiseError::kDhFailed;
  MixHash(hs->hash, ephemeral, kKeyLen);
  MixKey(hs->chainKey, ephemeral, kKeyLen);
  if (!MixDh(hs->chainKey, hs->localEphemeral, hs->remoteEphemeral)) return NoiseError::kDhFailed;
  if (!MixDh(hs->chainKey, hs->localEphemeral, peer.remoteStatic)) return NoiseError::kDhFailed;
  MixPsk(hs->chainKey, hs->hash, key, peer.psk);
  const bool ok = aead.Seal(key, kZeroNonce, nullptr, 0, hs->hash, kKeyLen, msg + kRespEmpty);
  Wipe(key, sizeof key);
  if (!ok) return NoiseError::kDhFailed;
  MixHash(hs->hash, msg + kRespEmpty, kTagLen);
  hs->localIndex = senderIndex;
  hs->stage = HandshakeStage::kResponseCreated;
  return NoiseError::kOk;
}

NoiseError ConsumeResponse(const StaticIdentity& id, const PeerKeys& peer, const uint8_t msg[kResponseSize], HandshakeState* hs) {
  if (hs->stage != HandshakeStage::kInitiationCreated) return NoiseError::kWrongStage;
  // Work on copies: a forged response must leave the handshake in progress untouched.
  uint8_t h[kKeyLen], ck[kKeyLen], key[kKeyLen];
  std::memcpy(h, hs->hash, kKeyLen);
  std::memcpy(ck, hs->chainKey, kKeyLen);
  const uint8_t* ephemeral = msg + kRespEphemeral;
  MixHash(h, ephemeral, kKeyLen);
  MixKey(ck, ephemeral, kKeyLen);
  NoiseError err = NoiseError::kOk;
  if (!MixDh(ck, hs->localEphemeral, ephemeral) || !MixDh(ck, id.priv, ephemeral)) err = NoiseError::kDhFailed;
  if (err == NoiseError::kOk) {
    Aead aead;
    MixPsk(ck, h, key, peer.psk);
    uint8_t none[1];
    if (!aead.Open(key, kZeroNonce, msg + kRespEmpty, kTagLen, h, kKeyLen, none)) err = NoiseError::kResponseDecrypt;
  }
  if (err == NoiseError::kOk) {
    MixHash(h, msg + kRespEmpty, kTagLen);
    std::memcpy(hs->hash, h, kKeyLen);
    std::memcpy(hs->chainKey, ck, kKeyLen);
    hs->remoteIndex = Le32(msg + kRespSender);
    hs->stage = HandshakeStage::kResponseConsumed;
  }
  Wipe(h, sizeof h);
  Wipe(ck, sizeof ck);
  Wipe(key, sizeof key);
  return err;
}

bool DeriveTransportKeys(HandshakeState* hs, uint8_t send[kKeyLen], uint8_t recv[kKeyLen], bool* initiator) {
  if (hs->stage == HandshakeStage::kResponseConsumed) {
    Hkdf(send, recv, nullptr, hs->chainKey, nullptr, 0);
    *initiator = true;
  } else if (hs->stage == HandshakeStage::kResponseCreated) {
    Hkdf(recv, send, nullptr, hs->chainKey, nullptr, 0);
    *initiator = false;
  } else {
    return false;
  }
  Wipe(hs->chainKey, sizeof hs->chainKey);
  Wipe(hs->hash, sizeof hs->hash);
  Wipe(hs->localEphemeral, sizeof hs->localEphemeral);
  hs->stage = HandshakeStage::kZeroed;
  return true;
}

}  // namespace wg
}  // namespace flannelts
