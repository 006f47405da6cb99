#pragma once
// The Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s handshake as WireGuard uses it (the paper, 5.4.2-5.4.4;
// wireguard-go device/noise-protocol.go): pure functions over a per-peer HandshakeState. Ephemeral
// keys, sender indices and timestamps are arguments, so a test can fix them and compare bytes; the
// caller (Device) draws them from its random source and clock. MAC1/MAC2 are cookie.h's job.
#include <cstdint>

#include "crypto.h"
#include "messages.h"

namespace flannelts {
namespace wg {

// Our long-term key pair.
struct StaticIdentity {
  uint8_t priv[kKeyLen] = {};
  uint8_t pub[kKeyLen] = {};
  bool Set(const uint8_t priv32[kKeyLen]);  // false if OpenSSL cannot use the key
};

// What we know about a peer before any handshake: its static key, the preshared key (zeros when
// none) and DH(our static, its static), computed once per configuration.
struct PeerKeys {
  uint8_t remoteStatic[kKeyLen] = {};
  uint8_t psk[kKeyLen] = {};
  uint8_t staticStatic[kKeyLen] = {};
  bool staticStaticOk = false;  // false for a low-order peer key: no handshake is possible
  void Set(const StaticIdentity& id, const uint8_t remoteStatic32[kKeyLen], const uint8_t psk32[kKeyLen]);
};

enum class HandshakeStage : uint8_t { kZeroed, kInitiationCreated, kInitiationConsumed, kResponseCreated, kResponseConsumed };

// One peer's handshake in progress. Zeroed (and its secrets wiped) once a session is derived.
struct HandshakeState {
  HandshakeStage stage = HandshakeStage::kZeroed;
  uint8_t hash[kKeyLen] = {};
  uint8_t chainKey[kKeyLen] = {};
  uint8_t localEphemeral[kKeyLen] = {};
  uint8_t remoteEphemeral[kKeyLen] = {};
  uint32_t localIndex = 0;
  uint32_t remoteIndex = 0;
  void Clear();
};

enum class NoiseError : uint8_t {
  kOk,
  kDhFailed,          // a DH gave zero (low-order key) or OpenSSL failed
  kStaticDecrypt,     // the initiation's encrypted static key did not authenticate
  kTimestampDecrypt,  // the initiation's timestamp did not authenticate (wrong peer key / PSK)
  kNoStaticStatic,    // the peer's key is unusable (low-order)
  kWrongStage,        // a response for a handshake we did not start (or already finished)
  kResponseDecrypt,   // the response's empty payload did not authenticate (wrong key / PSK)
};

const char* NoiseErrorName(NoiseError e);

// Initiator: writes the initiation up to (not including) MAC1 and MAC2, and the state it needs to
// consume the response. `timestamp` is TAI64N (messages.h Tai64n).
NoiseError CreateInitiation(const StaticIdentity& id, const PeerKeys& peer, const uint8_t ephemeralPriv[kKeyLen],
                            const uint8_t timestamp[kTimestampLen], uint32_t senderIndex, HandshakeState* hs,
                            uint8_t msg[kInitiationSize]);

// Responder, first half: decrypts the initiator's static key without knowing the peer yet.
struct InitiationView {
  uint8_t hash[kKeyLen];
  uint8_t chainKey[kKeyLen];
  uint8_t peerStatic[kKeyLen];
  uint8_t ephemeral[kKeyLen];
  uint8_t timestamp[kTimestampLen];
  uint32_t sender;
  void Wipe();
};
NoiseError OpenInitiationStatic(const StaticIdentity& id, const uint8_t msg[kInitiationSize], InitiationView* v);
// Second half, with the peer found by v->peerStatic: authenticates and decrypts the timestamp. The
// caller checks replay and flood, then CommitInitiation.
NoiseError OpenInitiationTimestamp(const PeerKeys& peer, const uint8_t msg[kInitiationSize], InitiationView* v);
void CommitInitiation(const InitiationView& v, HandshakeState* hs);

// Responder: the response (up to MAC1) for a consumed initiation.
NoiseError CreateResponse(const PeerKeys& peer, const uint8_t ephemeralPriv[kKeyLen], uint32_t senderIndex, HandshakeState* hs,
                          uint8_t msg[kResponseSize]);

// Initiator: checks the response against the handshake it started; on success hs is kResponseConsumed.
NoiseError ConsumeResponse(const StaticIdentity& id, const PeerKeys& peer, const uint8_t msg[kResponseSize], HandshakeState* hs);

// The transport keys of a finished handshake (kResponseConsumed: initiator; kResponseCreated:
// responder); the handshake's secrets are wiped. False in any other stage.
bool DeriveTransportKeys(HandshakeState* hs, uint8_t send[kKeyLen], uint8_t recv[kKeyLen], bool* initiator);

// HASH("Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s") and HASH(that || "WireGuard v1 zx2c4 Jason@zx2c4.com").
const uint8_t* InitialChainKey();
const uint8_t* InitialHash();

}  // namespace wg
}  // namespace flannelts
