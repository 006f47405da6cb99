// JavaScript class over wg::Device, for unit tests and the TypeScript cookie path: every call takes
// the time as an argument ({mono, wall} in milliseconds), so tests run the protocol on a fake clock,
// and returns what the device sent on its own (handshakes, keepalives, queued data, cookie replies)
// and the XChaCha20-Poly1305 jobs it handed to TypeScript. Random bytes can be injected (ephemeral
// keys, indices) and are drawn in this order by an initiation or response: ephemeral private key
// (32), sender index (4), then timer jitter (8) after an initiation.
#include <napi.h>

#include <cmath>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "base/ipaddr.h"
#include "wireguard/device.h"
#include "wireguard_js.h"

namespace flannelts {
namespace wgjs {

using namespace flannelts::wg;

// ---- shared with wireguard_interface_js.cc (wireguard_js.h) ----

Napi::Object EndpointJs(Napi::Env env, const Endpoint& e) {
  IpAddr a;
  a.family = e.family;
  std::memcpy(a.bytes, e.addr, sizeof a.bytes);
  Napi::Object o = Napi::Object::New(env);
  o.Set("address", FormatIp(a));
  o.Set("port", Napi::Number::New(env, e.port));
  return o;
}

Endpoint ToEndpoint(Napi::Env env, Napi::Value v) {
  Endpoint e;
  if (v.IsUndefined() || v.IsNull()) return e;
  if (!v.IsObject()) throw Napi::TypeError::New(env, "endpoint must be {address, port}");
  Napi::Object o = v.As<Napi::Object>();
  IpAddr a;
  if (!o.Get("address").IsString() || !ParseIp(o.Get("address").As<Napi::String>().Utf8Value(), &a)) {
    throw Napi::TypeError::New(env, "endpoint.address must be an IP address");
  }
  const double port = o.Get("port").IsNumber() ? o.Get("port").As<Napi::Number>().DoubleValue() : -1;
  if (!(port >= 0 && port <= 65535)) throw Napi::TypeError::New(env, "endpoint.port must be 0..65535");
  e.family = a.family;
  std::memcpy(e.addr, a.bytes, sizeof e.addr);
  e.port = static_cast<uint16_t>(port);
  return e;
}

Now ToNow(Napi::Env env, Napi::Value v) {
  if (!v.IsObject()) throw Napi::TypeError::New(env, "now must be {mono, wall} in milliseconds");
  Napi::Object o = v.As<Napi::Object>();
  Now n;
  n.mono = std::llround(o.Get("mono").ToNumber().DoubleValue() * 1e6);
  n.wall = std::llround(o.Get("wall").ToNumber().DoubleValue() * 1e6);
  return n;
}

PeerConfig ToPeerConfig(const Napi::Object& o) {
  PeerConfig cfg;
  std::memcpy(cfg.publicKey, Field(o, "publicKey", kKeyLen, false).Data(), kKeyLen);
  Napi::Buffer<uint8_t> psk = Field(o, "psk", kKeyLen, true);
  if (psk.Length()) std::memcpy(cfg.psk, psk.Data(), kKeyLen);
  cfg.endpoint = ToEndpoint(o.Env(), o.Get("endpoint"));
  if (o.Get("persistentKeepalive").IsNumber()) cfg.persistentKeepalive = o.Get("persistentKeepalive").As<Napi::Number>().Uint32Value();
  return cfg;
}

Napi::Object SealJobJs(Napi::Env env, const CookieSealJob& j) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("to", EndpointJs(env, j.to));
  o.Set("receiver", Napi::Number::New(env, j.receiver));
  o.Set("key", Copy(env, j.key, kKeyLen));
  o.Set("nonce", Copy(env, j.nonce, kXNonceLen));
  o.Set("cookie", Copy(env, j.cookie, kMacLen));
  o.Set("aad", Copy(env, j.aad, kMacLen));
  return o;
}

Napi::Object OpenJobJs(Napi::Env env, const CookieOpenJob& j) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("peer", Copy(env, j.peer, kKeyLen));
  o.Set("key", Copy(env, j.key, kKeyLen));
  o.Set("nonce", Copy(env, j.nonce, kXNonceLen));
  o.Set("sealed", Copy(env, j.sealed, sizeof j.sealed));
  o.Set("aad", Copy(env, j.aad, kMacLen));
  return o;
}

CookieSealJob ToSealJob(const Napi::Object& j) {
  CookieSealJob job;
  job.to = ToEndpoint(j.Env(), j.Get("to"));
  job.receiver = FieldU32(j, "receiver");
  std::memcpy(job.nonce, Field(j, "nonce", kXNonceLen, false).Data(), kXNonceLen);
  return job;
}

Napi::Object PeerStatsJs(Napi::Env env, const PeerStats& s) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("txBytes", Napi::Number::New(env, static_cast<double>(s.txBytes)));
  o.Set("rxBytes", Napi::Number::New(env, static_cast<double>(s.rxBytes)));
  o.Set("lastHandshakeMs", Napi::Number::New(env, static_cast<double>(s.lastHandshakeWallNs) / 1e6));
  if (s.endpoint.family) o.Set("endpoint", EndpointJs(env, s.endpoint));
  o.Set("persistentKeepalive", Napi::Number::New(env, s.persistentKeepalive));
  o.Set("handshakeAttempts", Napi::Number::New(env, s.handshakeAttempts));
  o.Set("staged", Napi::Number::New(env, static_cast<double>(s.staged)));
  o.Set("current", Napi::Boolean::New(env, s.hasCurrent));
  o.Set("next", Napi::Boolean::New(env, s.hasNext));
  o.Set("previous", Napi::Boolean::New(env, s.hasPrevious));
  return o;
}

Napi::Object ReasonCountersJs(Napi::Env env, const Device& d) {
  Napi::Object o = Napi::Object::New(env);
  for (size_t i = 0; i < static_cast<size_t>(Reason::kCount); i++) {
    const Reason r = static_cast<Reason>(i);
    o.Set(ReasonName(r), Napi::Number::New(env, static_cast<double>(d.Count(r))));
  }
  return o;
}

namespace {

// Injected bytes first, then OpenSSL's.
class InjectableRandom : public RandomSource {
 public:
  void Fill(uint8_t* p, size_t n) override {
    size_t i = 0;
    for (; i < n && !queue_.empty(); i++) {
      p[i] = queue_.front();
      queue_.pop_front();
    }
    if (i < n) system_.Fill(p + i, n - i);
  }
  void Inject(const uint8_t* p, size_t n) { queue_.insert(queue_.end(), p, p + n); }
  size_t Pending() const { return queue_.size(); }

 private:
  std::deque<uint8_t> queue_;
  SystemRandom system_;
};

// Output that records what the device sends, returned to JavaScript with each call.
class Collect : public Output {
 public:
  explicit Collect(Napi::Env env)
      : env_(env), sends_(Napi::Array::New(env)), seals_(Napi::Array::New(env)), opens_(Napi::Array::New(env)) {}
  void SendOwn(const Endpoint& to, const uint8_t* d, size_t n) override {
    Napi::Object o = Napi::Object::New(env_);
    o.Set("to", EndpointJs(env_, to));
    o.Set("data", Copy(env_, d, n));
    sends_.Set(sends_.Length(), o);
  }
  void SealCookie(const CookieSealJob& j) override { seals_.Set(seals_.Length(), SealJobJs(env_, j)); }
  void OpenCookie(const CookieOpenJob& j) override { opens_.Set(opens_.Length(), OpenJobJs(env_, j)); }
  Napi::Object Result() {
    Napi::Object o = Napi::Object::New(env_);
    o.Set("sends", sends_);
    o.Set("cookieSeals", seals_);
    o.Set("cookieOpens", opens_);
    return o;
  }

 private:
  Napi::Env env_;
  Napi::Array sends_, seals_, opens_;
};

const char* VerdictName(Verdict v) {
  switch (v) {
    case Verdict::kInner: return "inner";
    case Verdict::kHandled: return "handled";
    case Verdict::kDrop: return "drop";
    case Verdict::kSend: return "send";
    case Verdict::kQueued: return "queued";
  }
  return "unknown";
}

class DeviceJs : public Napi::ObjectWrap<DeviceJs> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "WireGuardDevice",
                       {InstanceMethod("publicKey", &DeviceJs::PublicKey), InstanceMethod("injectRandom", &DeviceJs::InjectRandom),
                        InstanceMethod("setPeer", &DeviceJs::SetPeer), InstanceMethod("removePeer", &DeviceJs::RemovePeer),
                        InstanceMethod("receive", &DeviceJs::Receive), InstanceMethod("seal", &DeviceJs::Seal),
                        InstanceMethod("tick", &DeviceJs::Tick), InstanceMethod("nextDeadline", &DeviceJs::NextDeadline),
                        InstanceMethod("completeCookieSeal", &DeviceJs::CompleteCookieSeal),
                        InstanceMethod("consumeCookie", &DeviceJs::ConsumeCookie), InstanceMethod("peerStats", &DeviceJs::PeerStatsJs),
                        InstanceMethod("counters", &DeviceJs::Counters)});
  }

  // new WireGuardDevice({privateKey, mtu?, timing?: {scale?, rekeyAfterMessages?, rejectAfterMessages?}})
  explicit DeviceJs(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DeviceJs>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "options object required");
    Napi::Object o = info[0].As<Napi::Object>();
    Timing t = Timing::Spec();
    if (o.Get("timing").IsObject()) {
      Napi::Object to = o.Get("timing").As<Napi::Object>();
      if (to.Get("scale").IsNumber()) t = t.Scaled(to.Get("scale").As<Napi::Number>().Int64Value());
      if (to.Get("rekeyAfterMessages").IsNumber()) t.rekeyAfterMessages = to.Get("rekeyAfterMessages").As<Napi::Number>().Int64Value();
      if (to.Get("rejectAfterMessages").IsNumber()) t.rejectAfterMessages = to.Get("rejectAfterMessages").As<Napi::Number>().Int64Value();
    }
    device_ = std::make_unique<Device>(t, &random_);
    if (!device_->SetPrivateKey(Field(o, "privateKey", kKeyLen, false).Data())) throw Napi::Error::New(env, "unusable privateKey");
    if (o.Get("mtu").IsNumber()) device_->SetMtu(o.Get("mtu").As<Napi::Number>().Uint32Value());
  }

 private:
  Napi::Value PublicKey(const Napi::CallbackInfo& info) { return Copy(info.Env(), device_->PublicKey(), kKeyLen); }

  Napi::Value InjectRandom(const Napi::CallbackInfo& info) {
    Napi::Buffer<uint8_t> b = Arg(info, 0, "bytes", 0);
    random_.Inject(b.Data(), b.Length());
    return Napi::Number::New(info.Env(), static_cast<double>(random_.Pending()));
  }

  // setPeer({publicKey, psk?, endpoint?, persistentKeepalive?}, now) -> {sends, ...}
  Napi::Value SetPeer(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsObject()) throw Napi::TypeError::New(env, "setPeer(config, now)");
    const PeerConfig cfg = ToPeerConfig(info[0].As<Napi::Object>());
    Collect out(env);
    device_->SetPeer(cfg, ToNow(env, info[1]), out);
    return out.Result();
  }

  Napi::Value RemovePeer(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), device_->RemovePeer(Arg(info, 0, "publicKey", kKeyLen).Data()));
  }

  // receive(datagram, from, now, underLoad?) -> {verdict, reason, peer?, inner?, sends, cookieSeals, cookieOpens}
  Napi::Value Receive(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Buffer<uint8_t> d = Arg(info, 0, "datagram", 0);
    std::vector<uint8_t> copy(d.Data(), d.Data() + d.Length());  // decrypted in place: leave the caller's bytes alone
    const Endpoint from = ToEndpoint(env, info.Length() > 1 ? info[1] : env.Undefined());
    const bool underLoad = info.Length() > 3 && info[3].ToBoolean();
    Collect out(env);
    RxResult r = device_->Receive(copy.data(), copy.size(), from, ToNow(env, info.Length() > 2 ? info[2] : env.Undefined()), underLoad, out);
    Napi::Object o = out.Result();
    o.Set("verdict", VerdictName(r.verdict));
    o.Set("reason", ReasonName(r.reason));
    if (r.peer) o.Set("peer", Copy(env, r.peer->PublicKey(), kKeyLen));
    if (r.verdict == Verdict::kInner) o.Set("inner", Copy(env, copy.data() + r.offset, r.length));
    return o;
  }

  // seal(peerPublicKey, innerPacket, now) -> {verdict, reason, datagram?, to?, sends, ...}
  Napi::Value Seal(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::shared_ptr<Peer> p = device_->FindPeer(Arg(info, 0, "publicKey", kKeyLen).Data());
    if (!p) throw Napi::Error::New(env, "no such peer");
    Napi::Buffer<uint8_t> inner = Arg(info, 1, "packet", 0);
    std::vector<uint8_t> buf(kTransportHeader + inner.Length() + kPaddingMultiple + kTagLen);
    if (inner.Length()) std::memcpy(buf.data() + kTransportHeader, inner.Data(), inner.Length());
    Collect out(env);
    TxResult r = device_->Seal(*p, buf.data(), inner.Length(), buf.size(), ToNow(env, info.Length() > 2 ? info[2] : env.Undefined()), out);
    Napi::Object o = out.Result();
    o.Set("verdict", VerdictName(r.verdict));
    o.Set("reason", ReasonName(r.reason));
    if (r.verdict == Verdict::kSend) {
      o.Set("datagram", Copy(env, buf.data(), r.length));
      o.Set("to", EndpointJs(env, r.to));
    }
    return o;
  }

  Napi::Value Tick(const Napi::CallbackInfo& info) {
    Collect out(info.Env());
    device_->Tick(ToNow(info.Env(), info.Length() ? info[0] : info.Env().Undefined()), out);
    return out.Result();
  }

  Napi::Value NextDeadline(const Napi::CallbackInfo& info) {
    const int64_t d = device_->NextDeadline();
    if (d == INT64_MAX) return info.Env().Null();
    return Napi::Number::New(info.Env(), static_cast<double>(d) / 1e6);
  }

  // completeCookieSeal(job, sealed32) -> {sends}: the cookie reply goes to job.to.
  Napi::Value CompleteCookieSeal(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsObject()) throw Napi::TypeError::New(env, "completeCookieSeal(job, sealed)");
    const CookieSealJob job = ToSealJob(info[0].As<Napi::Object>());
    Collect out(env);
    device_->CompleteCookieSeal(job, Arg(info, 1, "sealed", kMacLen + kTagLen).Data(), out);
    return out.Result();
  }

  // consumeCookie(peerPublicKey, cookie16, aad16, now) -> whether the peer took it
  Napi::Value ConsumeCookie(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const bool ok = device_->ConsumeCookie(Arg(info, 0, "publicKey", kKeyLen).Data(), Arg(info, 1, "cookie", kMacLen).Data(),
                                           Arg(info, 2, "aad", kMacLen).Data(), ToNow(env, info.Length() > 3 ? info[3] : env.Undefined()));
    return Napi::Boolean::New(env, ok);
  }

  Napi::Value PeerStatsJs(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::shared_ptr<Peer> p = device_->FindPeer(Arg(info, 0, "publicKey", kKeyLen).Data());
    if (!p) return env.Null();
    return wgjs::PeerStatsJs(env, p->Stats());
  }

  Napi::Value Counters(const Napi::CallbackInfo& info) {
    return ReasonCountersJs(info.Env(), *device_);
  }

  InjectableRandom random_;
  std::unique_ptr<Device> device_;
};

}  // namespace

void InitWireGuardDevice(Napi::Env env, Napi::Object wg) { wg.Set("Device", DeviceJs::Define(env)); }

}  // namespace wgjs

void InitWireGuard(Napi::Env env, Napi::Object exports) {
  Napi::Object wg = Napi::Object::New(env);
  wgjs::InitWireGuardCrypto(env, wg);
  wgjs::InitWireGuardDevice(env, wg);
  wgjs::InitWireGuardInterface(env, wg);
  exports.Set("wireguard", wg);
}

}  // namespace flannelts
