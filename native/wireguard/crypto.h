#pragma once
// WireGuard's primitives as thin wrappers over OpenSSL 3.0 (the copy inside Node, reached through the
// headers Node ships for addons): X25519, ChaCha20-Poly1305, BLAKE2s-256, keyed BLAKE2s (EVP_MAC
// "BLAKE2SMAC" with its size parameter), HMAC-BLAKE2s and the Noise HKDF built from it. No primitive
// is implemented here; XChaCha20-Poly1305 (cookie replies) is not in OpenSSL and lives in TypeScript
// over libsodium (see README.md).
#include <cstddef>
#include <cstdint>
#include <initializer_list>

typedef struct evp_cipher_ctx_st EVP_CIPHER_CTX;

namespace flannelts {
namespace wg {

constexpr size_t kKeyLen = 32;    // X25519 keys, symmetric keys, hashes
constexpr size_t kTagLen = 16;    // Poly1305
constexpr size_t kMacLen = 16;    // keyed BLAKE2s-128 (MAC1, MAC2, cookies)
constexpr size_t kNonceLen = 12;  // ChaCha20-Poly1305 (IETF)

struct Span {
  const uint8_t* p;
  size_t n;
};

// X25519 public key of a (clamped by OpenSSL) private key. False only if OpenSSL fails.
bool X25519Public(const uint8_t priv[kKeyLen], uint8_t pub[kKeyLen]);
// X25519(priv, pub). False when the result is all zeros (a low-order public key), as WireGuard requires.
bool X25519(const uint8_t priv[kKeyLen], const uint8_t pub[kKeyLen], uint8_t out[kKeyLen]);

// BLAKE2s-256 over the concatenation of the parts.
void Blake2s256(uint8_t out[kKeyLen], std::initializer_list<Span> parts);
// Keyed BLAKE2s with an output of outLen bytes (16 or 32): a different function from truncating the
// 32-byte output, so the size goes into the parameter block (EVP_MAC "size"). keyLen 1..32.
bool Blake2sMac(uint8_t* out, size_t outLen, const uint8_t* key, size_t keyLen, std::initializer_list<Span> parts);
// HMAC-BLAKE2s-256 over the concatenation of the parts.
void HmacBlake2s(uint8_t out[kKeyLen], const uint8_t* key, size_t keyLen, std::initializer_list<Span> parts);
// The Noise HKDF: n (1..3) outputs of 32 bytes from chaining key ck and input.
void Hkdf(uint8_t* out1, uint8_t* out2, uint8_t* out3, const uint8_t ck[kKeyLen], const uint8_t* input, size_t inputLen);

// Cryptographically random bytes (OpenSSL's DRBG).
bool RandomBytes(uint8_t* p, size_t n);

// Where ephemeral keys, indices, nonces, cookie secrets and timer jitter come from. The device uses
// SystemRandom; tests inject bytes to fix ephemeral keys and indices.
class RandomSource {
 public:
  virtual ~RandomSource() = default;
  virtual void Fill(uint8_t* p, size_t n) = 0;
};

class SystemRandom : public RandomSource {
 public:
  void Fill(uint8_t* p, size_t n) override;
};
// Constant-time equality and a zeroing the compiler keeps.
bool Equal(const uint8_t* a, const uint8_t* b, size_t n);
void Wipe(void* p, size_t n);
bool IsZero(const uint8_t* p, size_t n);

// ChaCha20-Poly1305 (RFC 8439) with a context kept across calls: one per thread, never shared.
// Seal writes n bytes of ciphertext and the 16-byte tag at out+n; out may equal in. Open checks the
// tag over n-16 bytes of ciphertext and writes n-16 bytes of plaintext; out may equal in.
class Aead {
 public:
  Aead();
  ~Aead();
  Aead(const Aead&) = delete;
  Aead& operator=(const Aead&) = delete;
  bool Seal(const uint8_t key[kKeyLen], const uint8_t nonce[kNonceLen], const uint8_t* in, size_t n, const uint8_t* aad, size_t aadLen, uint8_t* out);
  bool Open(const uint8_t key[kKeyLen], const uint8_t nonce[kNonceLen], const uint8_t* in, size_t n, const uint8_t* aad, size_t aadLen, uint8_t* out);

 private:
  bool Init(const uint8_t key[kKeyLen], const uint8_t nonce[kNonceLen], int enc);
  EVP_CIPHER_CTX* ctx_;
  uint8_t key_[kKeyLen] = {};  // the key in ctx_ (a copy, wiped with the context)
  bool keyed_ = false;
};

// WireGuard's nonces: 4 zero bytes, then the 64-bit counter little-endian.
void CounterNonce(uint64_t counter, uint8_t nonce[kNonceLen]);

}  // namespace wg
}  // namespace flannelts
