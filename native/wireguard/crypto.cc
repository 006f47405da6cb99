// OpenSSL 3.0 calls behind crypto.h. Every function checks OpenSSL's answer; a failure is reported
// to the caller, which drops the message (never a crash on bad input).
#include "crypto.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <cstdlib>
#include <cstring>

namespace flannelts {
namespace wg {

namespace {

EVP_PKEY* PrivateKey(const uint8_t priv[kKeyLen]) { return EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, priv, kKeyLen); }

// Fetched once: EVP_MAC_fetch is costly, and a fetched EVP_MAC is shareable between threads.
EVP_MAC* Blake2sMacAlgorithm() {
  static EVP_MAC* mac = EVP_MAC_fetch(nullptr, "BLAKE2SMAC", nullptr);
  return mac;
}

EVP_MAC* HmacAlgorithm() {
  static EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  return mac;
}

}  // namespace

bool X25519Public(const uint8_t priv[kKeyLen], uint8_t pub[kKeyLen]) {
  EVP_PKEY* k = PrivateKey(priv);
  if (!k) return false;
  size_t len = kKeyLen;
  const bool ok = EVP_PKEY_get_raw_public_key(k, pub, &len) == 1 && len == kKeyLen;
  EVP_PKEY_free(k);
  return ok;
}

bool X25519(const uint8_t priv[kKeyLen], const uint8_t pub[kKeyLen], uint8_t out[kKeyLen]) {
  EVP_PKEY* a = PrivateKey(priv);
  EVP_PKEY* b = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nullptr, pub, kKeyLen);
  EVP_PKEY_CTX* c = a ? EVP_PKEY_CTX_new(a, nullptr) : nullptr;
  size_t len = kKeyLen;
  // OpenSSL refuses an all-zero result (a low-order point), which is WireGuard's rule as well.
  // validate_peer = 0: X25519 public keys are any 32 bytes; the zero-result check is what matters.
  bool ok = a && b && c && EVP_PKEY_derive_init(c) == 1 && EVP_PKEY_derive_set_peer_ex(c, b, 0) == 1 &&
            EVP_PKEY_derive(c, out, &len) == 1 && len == kKeyLen;
  if (ok && IsZero(out, kKeyLen)) ok = false;
  if (!ok) Wipe(out, kKeyLen);
  EVP_PKEY_CTX_free(c);
  EVP_PKEY_free(b);
  EVP_PKEY_free(a);
  return ok;
}

void Blake2s256(uint8_t out[kKeyLen], std::initializer_list<Span> parts) {
  EVP_MD_CTX* c = EVP_MD_CTX_new();
  unsigned len = 0;
  bool ok = c && EVP_DigestInit_ex(c, EVP_blake2s256(), nullptr) == 1;
  for (const Span& s : parts) ok = ok && EVP_DigestUpdate(c, s.p, s.n) == 1;
  ok = ok && EVP_DigestFinal_ex(c, out, &len) == 1;
  if (!ok) Wipe(out, kKeyLen);
  EVP_MD_CTX_free(c);
}

bool Blake2sMac(uint8_t* out, size_t outLen, const uint8_t* key, size_t keyLen, std::initializer_list<Span> parts) {
  EVP_MAC* alg = Blake2sMacAlgorithm();
  if (!alg || outLen == 0 || outLen > kKeyLen || keyLen == 0 || keyLen > kKeyLen) return false;
  EVP_MAC_CTX* c = EVP_MAC_CTX_new(alg);
  size_t size = outLen;
  OSSL_PARAM params[] = {OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size), OSSL_PARAM_construct_end()};
  size_t written = 0;
  bool ok = c && EVP_MAC_init(c, key, keyLen, params) == 1;
  for (const Span& s : parts) ok = ok && EVP_MAC_update(c, s.p, s.n) == 1;
  ok = ok && EVP_MAC_final(c, out, &written, outLen) == 1 && written == outLen;
  if (!ok) Wipe(out, outLen);
  EVP_MAC_CTX_free(c);
  return ok;
}

void HmacBlake2s(uint8_t out[kKeyLen], const uint8_t* key, size_t keyLen, std::initializer_list<Span> parts) {
  EVP_MAC* alg = HmacAlgorithm();
  EVP_MAC_CTX* c = alg ? EVP_MAC_CTX_new(alg) : nullptr;
  char digest[] = "BLAKE2S-256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0), OSSL_PARAM_construct_end()};
  size_t written = 0;
  bool ok = c && EVP_MAC_init(c, key, keyLen, params) == 1;
  for (const Span& s : parts) ok = ok && EVP_MAC_update(c, s.p, s.n) == 1;
  ok = ok && EVP_MAC_final(c, out, &written, kKeyLen) == 1 && written == kKeyLen;
  if (!ok) Wipe(out, kKeyLen);
  EVP_MAC_CTX_free(c);
}

void Hkdf(uint8_t* out1, uint8_t* out2, uint8_t* out3, const uint8_t ck[kKeyLen], const uint8_t* input, size_t inputLen) {
  uint8_t prk[kKeyLen];
  const uint8_t one = 1, two = 2, three = 3;
  HmacBlake2s(prk, ck, kKeyLen, {{input, inputLen}});
  HmacBlake2s(out1, prk, kKeyLen, {{&one, 1}});
  if (out2) HmacBlake2s(out2, prk, kKeyLen, {{out1, kKeyLen}, {&two, 1}});
  if (out2 && out3) HmacBlake2s(out3, prk, kKeyLen, {{out2, kKeyLen}, {&three, 1}});
  Wipe(prk, sizeof prk);
}

bool RandomBytes(uint8_t* p, size_t n) { return RAND_bytes(p, static_cast<int>(n)) == 1; }

void SystemRandom::Fill(uint8_t* p, size_t n) {
  // OpenSSL's DRBG only fails when it cannot seed; a zero key then is worse than stopping.
  if (!RandomBytes(p, n)) abort();
}

bool Equal(const uint8_t* a, const uint8_t* b, size_t n) { return CRYPTO_memcmp(a, b, n) == 0; }

void Wipe(void* p, size_t n) { OPENSSL_cleanse(p, n); }

bool IsZero(const uint8_t* p, size_t n) {
  uint8_t acc = 0;
  for (size_t i = 0; i < n; i++) acc |= p[i];
  return acc == 0;
}

Aead::Aead() : ctx_(EVP_CIPHER_CTX_new()) {
  if (ctx_ && EVP_CipherInit_ex(ctx_, EVP_chacha20_poly1305(), nullptr, nullptr, nullptr, 1) != 1) {
    EVP_CIPHER_CTX_free(ctx_);
    ctx_ = nullptr;
  }
}

Aead::~Aead() {
  EVP_CIPHER_CTX_free(ctx_);
  Wipe(key_, sizeof key_);
}

// The key goes into the context only when it differs from the last one: a data thread seals and
// opens run after run with the same session keys, and the key setup was a tenth of a 1420-byte seal
// (measured: 1008 -> 924 ns; 64 bytes: 454 -> 395 ns). The nonce is set every time.
bool Aead::Init(const uint8_t key[kKeyLen], const uint8_t nonce[kNonceLen], int enc) {
  if (keyed_ && Equal(key, key_, kKeyLen)) return EVP_CipherInit_ex(ctx_, nullptr, nullptr, nullptr, nonce, enc) == 1;
  keyed_ = EVP_CipherInit_ex(ctx_, nullptr, nullptr, key, nonce, enc) == 1;
  if (keyed_) std::memcpy(key_, key, kKeyLen);
  return keyed_;
}

bool Aead::Seal(const uint8_t key[kKeyLen], const uint8_t nonce[kNonceLen], const uint8_t* in, size_t n, const uint8_t* aad, size_t aadLen, uint8_t* out) {
  int len = 0;
  if (!ctx_ || n > 0x7fffffff || !Init(key, nonce, 1)) return false;
  if (aadLen && EVP_CipherUpdate(ctx_, nullptr, &len, aad, static_cast<int>(aadLen)) != 1) return false;
  if (n && EVP_CipherUpdate(ctx_, out, &len, in, static_cast<int>(n)) != 1) return false;
  if (EVP_CipherFinal_ex(ctx_, out + n, &len) != 1) return false;
  return EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_AEAD_GET_TAG, kTagLen, out + n) == 1;
}

bool Aead::Open(const uint8_t key[kKeyLen], const uint8_t nonce[kNonceLen], const uint8_t* in, size_t n, const uint8_t* aad, size_t aadLen, uint8_t* out) {
  if (!ctx_ || n < kTagLen || n > 0x7fffffff) return false;
  const size_t body = n - kTagLen;
  uint8_t tag[kTagLen];
  std::memcpy(tag, in + body, kTagLen);  // out may overlap in: keep the tag before decrypting over it
  int len = 0;
  if (!Init(key, nonce, 0)) return false;
  if (EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_AEAD_SET_TAG, kTagLen, tag) != 1) return false;
  if (aadLen && EVP_CipherUpdate(ctx_, nullptr, &len, aad, static_cast<int>(aadLen)) != 1) return false;
  if (body && EVP_CipherUpdate(ctx_, out, &len, in, static_cast<int>(body)) != 1) return false;
  if (EVP_CipherFinal_ex(ctx_, out + body, &len) != 1) {
    Wipe(out, body);  // never hand out unauthenticated plaintext
    return false;
  }
  return true;
}

void CounterNonce(uint64_t counter, uint8_t nonce[kNonceLen]) {
  std::memset(nonce, 0, 4);
  for (int i = 0; i < 8; i++) nonce[4 + i] = static_cast<uint8_t>(counter >> (8 * i));
}

}  // namespace wg
}  // namespace flannelts
