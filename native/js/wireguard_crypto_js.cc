// JavaScript bindings of the WireGuard primitives and the handshake's pure functions, for known-answer
// tests: each primitive over OpenSSL, and both handshake roles with fixed ephemeral keys, indices and
// timestamps. Test-facing: the transport keys they return are for comparison, never for logging.
#include <napi.h>

#include <string>
#include <vector>

#include "wireguard/cookie.h"
#include "wireguard/crypto.h"
#include "wireguard/noise.h"
#include "wireguard_js.h"

namespace flannelts {
namespace wgjs {

using namespace flannelts::wg;

Napi::Buffer<uint8_t> Arg(const Napi::CallbackInfo& info, size_t i, const char* name, size_t exact) {
  if (info.Length() <= i || !info[i].IsBuffer()) throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a Buffer");
  Napi::Buffer<uint8_t> b = info[i].As<Napi::Buffer<uint8_t>>();
  if (exact && b.Length() != exact) throw Napi::TypeError::New(info.Env(), std::string(name) + " must be " + std::to_string(exact) + " bytes");
  return b;
}

Napi::Buffer<uint8_t> Field(const Napi::Object& o, const char* name, size_t exact, bool optional) {
  Napi::Value v = o.Get(name);
  if (optional && (v.IsUndefined() || v.IsNull())) return Napi::Buffer<uint8_t>();
  if (!v.IsBuffer()) throw Napi::TypeError::New(o.Env(), std::string(name) + " must be a Buffer");
  Napi::Buffer<uint8_t> b = v.As<Napi::Buffer<uint8_t>>();
  if (exact && b.Length() != exact) throw Napi::TypeError::New(o.Env(), std::string(name) + " must be " + std::to_string(exact) + " bytes");
  return b;
}

uint32_t FieldU32(const Napi::Object& o, const char* name) {
  Napi::Value v = o.Get(name);
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string(name) + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= 4294967295.0)) throw Napi::TypeError::New(o.Env(), std::string(name) + " must be 0..2^32-1");
  return static_cast<uint32_t>(d);
}

Napi::Buffer<uint8_t> Copy(Napi::Env env, const uint8_t* p, size_t n) { return Napi::Buffer<uint8_t>::Copy(env, p, n); }

namespace {

Napi::Value X25519PublicJs(const Napi::CallbackInfo& info) {
  uint8_t pub[kKeyLen];
  if (!X25519Public(Arg(info, 0, "privateKey", kKeyLen).Data(), pub)) return info.Env().Null();
  return Copy(info.Env(), pub, kKeyLen);
}

Napi::Value X25519Js(const Napi::CallbackInfo& info) {
  uint8_t out[kKeyLen];
  if (!X25519(Arg(info, 0, "privateKey", kKeyLen).Data(), Arg(info, 1, "publicKey", kKeyLen).Data(), out)) return info.Env().Null();
  return Copy(info.Env(), out, kKeyLen);
}

Napi::Value Blake2sJs(const Napi::CallbackInfo& info) {
  Napi::Buffer<uint8_t> d = Arg(info, 0, "data", 0);
  uint8_t out[kKeyLen];
  Blake2s256(out, {{d.Data(), d.Length()}});
  return Copy(info.Env(), out, kKeyLen);
}

Napi::Value Blake2sMacJs(const Napi::CallbackInfo& info) {
  Napi::Buffer<uint8_t> key = Arg(info, 0, "key", 0), d = Arg(info, 1, "data", 0);
  const uint32_t outLen = info.Length() > 2 && info[2].IsNumber() ? info[2].As<Napi::Number>().Uint32Value() : 32;
  uint8_t out[kKeyLen];
  if (outLen > kKeyLen || !Blake2sMac(out, outLen, key.Data(), key.Length(), {{d.Data(), d.Length()}})) return info.Env().Null();
  return Copy(info.Env(), out, outLen);
}

Napi::Value HmacJs(const Napi::CallbackInfo& info) {
  Napi::Buffer<uint8_t> key = Arg(info, 0, "key", 0), d = Arg(info, 1, "data", 0);
  uint8_t out[kKeyLen];
  HmacBlake2s(out, key.Data(), key.Length(), {{d.Data(), d.Length()}});
  return Copy(info.Env(), out, kKeyLen);
}

Napi::Value HkdfJs(const Napi::CallbackInfo& info) {
  Napi::Buffer<uint8_t> ck = Arg(info, 0, "chainKey", kKeyLen), in = Arg(info, 1, "input", 0);
  uint8_t a[kKeyLen], b[kKeyLen], c[kKeyLen];
  Hkdf(a, b, c, ck.Data(), in.Data(), in.Length());
  Napi::Array out = Napi::Array::New(info.Env(), 3);
  out.Set(0u, Copy(info.Env(), a, kKeyLen));
  out.Set(1u, Copy(info.Env(), b, kKeyLen));
  out.Set(2u, Copy(info.Env(), c, kKeyLen));
  return out;
}

// aead(seal: boolean, key, nonce12, data, aad) -> Buffer | null
Napi::Value AeadJs(const Napi::CallbackInfo& info) {
  const bool seal = info.Length() > 0 && info[0].ToBoolean();
  Napi::Buffer<uint8_t> key = Arg(info, 1, "key", kKeyLen), nonce = Arg(info, 2, "nonce", kNonceLen), d = Arg(info, 3, "data", 0),
                        aad = Arg(info, 4, "aad", 0);
  Aead aead;
  if (seal) {
    std::vector<uint8_t> out(d.Length() + kTagLen);
    if (!aead.Seal(key.Data(), nonce.Data(), d.Data(), d.Length(), aad.Data(), aad.Length(), out.data())) return info.Env().Null();
    return Copy(info.Env(), out.data(), out.size());
  }
  if (d.Length() < kTagLen) return info.Env().Null();
  std::vector<uint8_t> out(d.Length() - kTagLen + 1);
  if (!aead.Open(key.Data(), nonce.Data(), d.Data(), d.Length(), aad.Data(), aad.Length(), out.data())) return info.Env().Null();
  return Copy(info.Env(), out.data(), d.Length() - kTagLen);
}

Napi::Object Keys(Napi::Env env, HandshakeState* hs) {
  Napi::Object o = Napi::Object::New(env);
  uint8_t send[kKeyLen], recv[kKeyLen];
  bool initiator = false;
  if (DeriveTransportKeys(hs, send, recv, &initiator)) {
    o.Set("sendKey", Copy(env, send, kKeyLen));
    o.Set("recvKey", Copy(env, recv, kKeyLen));
    Wipe(send, sizeof send);
    Wipe(recv, sizeof recv);
  }
  return o;
}

// noiseInitiator({staticPrivate, peerPublic, psk?, ephemeralPrivate, timestamp, senderIndex, response?})
// -> {initiation (MAC1 set, MAC2 zero), error, remoteIndex?, sendKey?, recvKey?}
Napi::Value NoiseInitiatorJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "options object required");
  Napi::Object o = info[0].As<Napi::Object>();
  StaticIdentity id;
  if (!id.Set(Field(o, "staticPrivate", kKeyLen, false).Data())) throw Napi::Error::New(env, "unusable staticPrivate");
  Napi::Buffer<uint8_t> psk = Field(o, "psk", kKeyLen, true);
  const uint8_t zero[kKeyLen] = {};
  PeerKeys peer;
  peer.Set(id, Field(o, "peerPublic", kKeyLen, false).Data(), psk.Length() ? psk.Data() : zero);
  HandshakeState hs;
  uint8_t msg[kInitiationSize];
  Napi::Object out = Napi::Object::New(env);
  NoiseError err = CreateInitiation(id, peer, Field(o, "ephemeralPrivate", kKeyLen, false).Data(), Field(o, "timestamp", kTimestampLen, false).Data(),
                                    FieldU32(o, "senderIndex"), &hs, msg);
  if (err == NoiseError::kOk) {
    CookieGenerator gen;
    gen.Init(peer.remoteStatic);
    gen.AddMacs(msg, sizeof msg, 0, 0);
    out.Set("initiation", Copy(env, msg, sizeof msg));
    Napi::Buffer<uint8_t> resp = Field(o, "response", kResponseSize, true);
    if (resp.Length()) {
      err = ConsumeResponse(id, peer, resp.Data(), &hs);
      if (err == NoiseError::kOk) {
        out.Set("remoteIndex", Napi::Number::New(env, hs.remoteIndex));
        Napi::Object k = Keys(env, &hs);
        out.Set("sendKey", k.Get("sendKey"));
        out.Set("recvKey", k.Get("recvKey"));
      }
    }
  }
  out.Set("error", NoiseErrorName(err));
  hs.Clear();
  return out;
}

// noiseResponder({staticPrivate, psk?, initiation, ephemeralPrivate, senderIndex})
// -> {error, peerStatic?, timestamp?, remoteIndex?, response? (MAC1 set), sendKey?, recvKey?}
Napi::Value NoiseResponderJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "options object required");
  Napi::Object o = info[0].As<Napi::Object>();
  StaticIdentity id;
  if (!id.Set(Field(o, "staticPrivate", kKeyLen, false).Data())) throw Napi::Error::New(env, "unusable staticPrivate");
  Napi::Buffer<uint8_t> init = Field(o, "initiation", kInitiationSize, false);
  Napi::Buffer<uint8_t> psk = Field(o, "psk", kKeyLen, true);
  const uint8_t zero[kKeyLen] = {};
  Napi::Object out = Napi::Object::New(env);
  InitiationView v;
  NoiseError err = OpenInitiationStatic(id, init.Data(), &v);
  PeerKeys peer;
  if (err == NoiseError::kOk) {
    out.Set("peerStatic", Copy(env, v.peerStatic, kKeyLen));
    peer.Set(id, v.peerStatic, psk.Length() ? psk.Data() : zero);
    err = OpenInitiationTimestamp(peer, init.Data(), &v);
  }
  HandshakeState hs;
  if (err == NoiseError::kOk) {
    out.Set("timestamp", Copy(env, v.timestamp, kTimestampLen));
    out.Set("remoteIndex", Napi::Number::New(env, v.sender));
    CommitInitiation(v, &hs);
    uint8_t msg[kResponseSize];
    err = CreateResponse(peer, Field(o, "ephemeralPrivate", kKeyLen, false).Data(), FieldU32(o, "senderIndex"), &hs, msg);
    if (err == NoiseError::kOk) {
      CookieGenerator gen;
      gen.Init(peer.remoteStatic);
      gen.AddMacs(msg, sizeof msg, 0, 0);
      out.Set("response", Copy(env, msg, sizeof msg));
      Napi::Object k = Keys(env, &hs);
      out.Set("sendKey", k.Get("sendKey"));
      out.Set("recvKey", k.Get("recvKey"));
    }
  }
  v.Wipe();
  hs.Clear();
  out.Set("error", NoiseErrorName(err));
  return out;
}

// mac1Valid(message, receiverPublicKey): the check a receiver makes before anything else.
Napi::Value Mac1ValidJs(const Napi::CallbackInfo& info) {
  Napi::Buffer<uint8_t> msg = Arg(info, 0, "message", 0);
  CookieChecker c;
  c.Init(Arg(info, 1, "publicKey", kKeyLen).Data());
  return Napi::Boolean::New(info.Env(), c.CheckMac1(msg.Data(), msg.Length()));
}

}  // namespace

void InitWireGuardCrypto(Napi::Env env, Napi::Object wg) {
  wg.Set("x25519Public", Napi::Function::New(env, X25519PublicJs, "x25519Public"));
  wg.Set("x25519", Napi::Function::New(env, X25519Js, "x25519"));
  wg.Set("blake2s", Napi::Function::New(env, Blake2sJs, "blake2s"));
  wg.Set("blake2sMac", Napi::Function::New(env, Blake2sMacJs, "blake2sMac"));
  wg.Set("hmacBlake2s", Napi::Function::New(env, HmacJs, "hmacBlake2s"));
  wg.Set("hkdf", Napi::Function::New(env, HkdfJs, "hkdf"));
  wg.Set("aead", Napi::Function::New(env, AeadJs, "aead"));
  wg.Set("noiseInitiator", Napi::Function::New(env, NoiseInitiatorJs, "noiseInitiator"));
  wg.Set("noiseResponder", Napi::Function::New(env, NoiseResponderJs, "noiseResponder"));
  wg.Set("mac1Valid", Napi::Function::New(env, Mac1ValidJs, "mac1Valid"));
}

}  // namespace wgjs
}  // namespace flannelts
