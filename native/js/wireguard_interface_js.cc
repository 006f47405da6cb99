// The userspace WireGuard interface for JavaScript (src/native/wireguard.ts WgInterface): what the
// control plane of a userspace device calls (key, peers, peer stats, counters) and the cookie jobs
// it carries out with libsodium. The interface goes into an engine's options (encap 'wireguard');
// data packets never come here. Times are the real clocks (the Device class is the fake-clock one).
#include <napi.h>

#include <memory>
#include <string>
#include <vector>

#include "encap/wireguard_interface.h"
#include "wireguard_js.h"

namespace flannelts {
namespace wgjs {

using namespace flannelts::wg;

namespace {

// Marks our objects, so an EngineOptions.wireguard that is something else is a TypeError, not a crash.
constexpr napi_type_tag kInterfaceTag = {0x666c616e6e656c74ull, 0x7377676966616365ull};

class InterfaceJs : public Napi::ObjectWrap<InterfaceJs> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "WireGuardInterface",
                       {InstanceMethod("publicKey", &InterfaceJs::PublicKey), InstanceMethod("setPrivateKey", &InterfaceJs::SetPrivateKey),
                        InstanceMethod("setMtu", &InterfaceJs::SetMtu), InstanceMethod("setPeer", &InterfaceJs::SetPeer),
                        InstanceMethod("removePeer", &InterfaceJs::RemovePeer), InstanceMethod("peers", &InterfaceJs::Peers),
                        InstanceMethod("counters", &InterfaceJs::Counters), InstanceMethod("onCookieJobs", &InterfaceJs::OnCookieJobs),
                        InstanceMethod("takeCookieJobs", &InterfaceJs::TakeCookieJobs),
                        InstanceMethod("completeCookieSeal", &InterfaceJs::CompleteCookieSeal),
                        InstanceMethod("consumeCookie", &InterfaceJs::ConsumeCookie), InstanceMethod("close", &InterfaceJs::Close)});
  }

  // new WireGuardInterface({privateKey, mtu?, timingScale?}); timingScale is the documented test hook
  // (native/wireguard/README.md): every protocol duration divided by it.
  explicit InterfaceJs(const Napi::CallbackInfo& info) : Napi::ObjectWrap<InterfaceJs>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "WireGuardInterface(options) needs {privateKey, mtu?, timingScale?}");
    Napi::Object o = info[0].As<Napi::Object>();
    Timing t = Timing::Spec();
    if (o.Get("timingScale").IsNumber()) {
      const int64_t scale = o.Get("timingScale").As<Napi::Number>().Int64Value();
      if (scale < 1 || scale > 1000) throw Napi::TypeError::New(env, "timingScale must be 1..1000");
      t = t.Scaled(scale);
    }
    iface_ = std::make_shared<WgInterface>(t);
    if (!iface_->device().SetPrivateKey(Field(o, "privateKey", kKeyLen, false).Data())) throw Napi::Error::New(env, "unusable privateKey");
    if (o.Get("mtu").IsNumber()) iface_->device().SetMtu(o.Get("mtu").As<Napi::Number>().Uint32Value());
    napi_type_tag_object(env, info.This(), &kInterfaceTag);
    env_ = env;
    napi_add_env_cleanup_hook(env, &InterfaceJs::CleanupHook, this);
  }

  ~InterfaceJs() override { Shutdown(); }

  const std::shared_ptr<WgInterface>& iface() const { return iface_; }

 private:
  static void CleanupHook(void* arg) { static_cast<InterfaceJs*>(arg)->Shutdown(); }

  // No more cookie notifications (an engine may keep the interface alive longer than this object).
  void Shutdown() {
    if (env_) {
      napi_remove_env_cleanup_hook(env_, &InterfaceJs::CleanupHook, this);
      env_ = nullptr;
    }
    StopNotify();
  }

  void StopNotify() {
    if (!notifying_) return;
    iface_->cookies().SetNotify(nullptr);  // waits for a notification in progress
    tsfn_.Release();
    notifying_ = false;
  }

  Napi::Value PublicKey(const Napi::CallbackInfo& info) { return Copy(info.Env(), iface_->device().PublicKey(), kKeyLen); }

  Napi::Value SetPrivateKey(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), iface_->device().SetPrivateKey(Arg(info, 0, "privateKey", kKeyLen).Data()));
  }

  Napi::Value SetMtu(const Napi::CallbackInfo& info) {
    if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(info.Env(), "setMtu(mtu)");
    iface_->device().SetMtu(info[0].As<Napi::Number>().Uint32Value());
    return info.Env().Undefined();
  }

  // setPeer({publicKey, psk?, endpoint?, persistentKeepalive?}) -> false for our own key (ignored,
  // as wireguard-go does). An endpoint replaces the peer's current one; none keeps it.
  Napi::Value SetPeer(const Napi::CallbackInfo& info) {
    if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(info.Env(), "setPeer({publicKey, psk?, endpoint?, persistentKeepalive?})");
    const PeerConfig cfg = ToPeerConfig(info[0].As<Napi::Object>());
    return Napi::Boolean::New(info.Env(), iface_->device().SetPeer(cfg, WgInterface::Now(), iface_->control()) != nullptr);
  }

  Napi::Value RemovePeer(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), iface_->device().RemovePeer(Arg(info, 0, "publicKey", kKeyLen).Data()));
  }

  // [{publicKey, endpoint?, lastHandshakeMs, rxBytes, txBytes, ...}] in public-key order.
  Napi::Value Peers(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const std::vector<std::shared_ptr<Peer>> peers = iface_->device().Peers();
    Napi::Array out = Napi::Array::New(env, peers.size());
    for (size_t i = 0; i < peers.size(); i++) {
      Napi::Object o = PeerStatsJs(env, peers[i]->Stats());
      o.Set("publicKey", Copy(env, peers[i]->PublicKey(), kKeyLen));
      out.Set(static_cast<uint32_t>(i), o);
    }
    return out;
  }

  // Every wg::Reason by name, and what the encapsulation counted itself.
  Napi::Value Counters(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = ReasonCountersJs(env, iface_->device());
    const WgEncapCounters& c = iface_->counters();
    const auto n = [&](const std::atomic<uint64_t>& v) { return Napi::Number::New(env, static_cast<double>(v.load(std::memory_order_relaxed))); };
    o.Set("rx_datagrams", n(c.rxDatagrams));
    o.Set("handshake_queued", n(c.handshakeQueued));
    o.Set("handshake_queue_full", n(c.handshakeQueueFull));
    o.Set("handshake_abandoned", Napi::Number::New(env, static_cast<double>(iface_->worker().abandoned())));
    o.Set("initiations_deferred", n(c.initiationsDeferred));
    o.Set("cookie_jobs_dropped", n(c.cookieJobsDropped));
    o.Set("control_unsent", n(c.controlUnsent));
    return o;
  }

  // onCookieJobs(callback): called (on the JavaScript thread) when jobs wait in takeCookieJobs();
  // onCookieJobs(null) stops it. The callback does not keep the process alive.
  Napi::Value OnCookieJobs(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    StopNotify();
    if (info.Length() < 1 || info[0].IsNull() || info[0].IsUndefined()) return env.Undefined();
    if (!info[0].IsFunction()) throw Napi::TypeError::New(env, "onCookieJobs(callback | null)");
    tsfn_ = Napi::ThreadSafeFunction::New(env, info[0].As<Napi::Function>(), "flannelts wireguard cookie jobs", 0, 1);
    tsfn_.Unref(env);
    notifying_ = true;
    Napi::ThreadSafeFunction fn = tsfn_;
    iface_->cookies().SetNotify([fn]() mutable { fn.NonBlockingCall(); });
    return env.Undefined();
  }

  Napi::Value TakeCookieJobs(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::vector<CookieSealJob> seals;
    std::vector<CookieOpenJob> opens;
    iface_->cookies().Take(&seals, &opens);
    Napi::Array s = Napi::Array::New(env, seals.size()), o = Napi::Array::New(env, opens.size());
    for (size_t i = 0; i < seals.size(); i++) s.Set(static_cast<uint32_t>(i), SealJobJs(env, seals[i]));
    for (size_t i = 0; i < opens.size(); i++) o.Set(static_cast<uint32_t>(i), OpenJobJs(env, opens[i]));
    Napi::Object out = Napi::Object::New(env);
    out.Set("cookieSeals", s);
    out.Set("cookieOpens", o);
    return out;
  }

  // completeCookieSeal(job, sealed32): the cookie reply goes out through the running engine; returns
  // {sends: []} like the Device's (nothing comes back to JavaScript).
  Napi::Value CompleteCookieSeal(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsObject()) throw Napi::TypeError::New(env, "completeCookieSeal(job, sealed)");
    const CookieSealJob job = ToSealJob(info[0].As<Napi::Object>());
    iface_->device().CompleteCookieSeal(job, Arg(info, 1, "sealed", kMacLen + kTagLen).Data(), iface_->control());
    Napi::Object out = Napi::Object::New(env);
    out.Set("sends", Napi::Array::New(env));
    return out;
  }

  Napi::Value ConsumeCookie(const Napi::CallbackInfo& info) {
    const bool ok = iface_->device().ConsumeCookie(Arg(info, 0, "publicKey", kKeyLen).Data(), Arg(info, 1, "cookie", kMacLen).Data(),
                                                   Arg(info, 2, "aad", kMacLen).Data(), WgInterface::Now());
    return Napi::Boolean::New(info.Env(), ok);
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Shutdown();
    return info.Env().Undefined();
  }

  std::shared_ptr<WgInterface> iface_;
  Napi::ThreadSafeFunction tsfn_;
  bool notifying_ = false;
  napi_env env_ = nullptr;
};

}  // namespace

void InitWireGuardInterface(Napi::Env env, Napi::Object wg) { wg.Set("Interface", InterfaceJs::Define(env)); }

}  // namespace wgjs

std::shared_ptr<WgInterface> UnwrapWgInterface(const Napi::Value& v) {
  Napi::Env env = v.Env();
  bool ours = false;
  if (v.IsObject()) napi_check_object_type_tag(env, v, &wgjs::kInterfaceTag, &ours);
  if (!ours) throw Napi::TypeError::New(env, "EngineOptions.wireguard must be a WireGuardInterface");
  return wgjs::InterfaceJs::Unwrap(v.As<Napi::Object>())->iface();
}

}  // namespace flannelts
