// The Engine class for JavaScript (src/native/engine.ts): open, setPeers, start, stats, capture,
// close. The engine's threads are joined on close(), on garbage collection and at process exit.
#include <napi.h>

#include <memory>
#include <vector>

#include "engine/engine.h"
#include "js/args.h"
#include "js/engine_options.h"

namespace flannelts {

namespace {

Napi::Object Direction(Napi::Env env, uint64_t packets, uint64_t bytes) {
  return NumberFields(env, {{"packets", static_cast<double>(packets)}, {"bytes", static_cast<double>(bytes)}});
}

// startCapture's options; every field optional. Unknown drop reasons and bad prefixes are TypeErrors.
CaptureFilter ToCaptureFilter(const Napi::Value& v) {
  Napi::Env env = v.Env();
  CaptureFilter f;
  if (v.IsUndefined()) return f;
  if (!v.IsObject()) throw Napi::TypeError::New(env, "startCapture(options) needs an options object");
  const Napi::Object o = v.As<Napi::Object>();
  auto flag = [&](const char* key, bool def) { return o.Get(key).IsUndefined() ? def : o.Get(key).ToBoolean().Value(); };
  auto count = [&](const char* key, double min, double max, double def) {
    const Napi::Value n = o.Get(key);
    if (n.IsUndefined()) return def;
    const double d = n.IsNumber() ? n.As<Napi::Number>().DoubleValue() : -1;
    if (!(d >= min && d <= max) || d != static_cast<double>(static_cast<uint64_t>(d)))
      throw Napi::TypeError::New(env, std::string("capture ") + key + " must be a whole number from " + std::to_string(static_cast<uint64_t>(min)) + " to " + std::to_string(static_cast<uint64_t>(max)));
    return d;
  };
  f.tx = flag("tx", true);
  f.rx = flag("rx", true);
  f.traffic = flag("traffic", true);
  f.snaplen = static_cast<uint32_t>(count("snaplen", 1, 262144, 65535));
  f.maxPackets = static_cast<uint64_t>(count("maxPackets", 0, 9007199254740991.0, 0));
  f.bufferBytes = static_cast<size_t>(count("bufferBytes", 65536, 256 << 20, 4 << 20));
  const Napi::Value reasons = o.Get("reasons");
  if (!reasons.IsUndefined()) {
    if (!reasons.IsArray()) throw Napi::TypeError::New(env, "capture reasons must be an array of drop reason names");
    const Napi::Array arr = reasons.As<Napi::Array>();
    f.dropMask = 0;
    for (uint32_t i = 0; i < arr.Length(); i++) {
      const std::string name = arr.Get(i).ToString().Utf8Value();
      int d = 0;
      while (d < kDropCount && name != DropName(d)) d++;
      if (d == kDropCount) throw Napi::TypeError::New(env, "unknown drop reason " + name);
      f.dropMask |= 1ull << d;
    }
  }
  const Napi::Value peers = o.Get("peers");
  if (!peers.IsUndefined()) {
    if (!peers.IsArray()) throw Napi::TypeError::New(env, "capture peers must be an array of CIDRs or addresses");
    const Napi::Array arr = peers.As<Napi::Array>();
    for (uint32_t i = 0; i < arr.Length(); i++) {
      const std::string text = arr.Get(i).ToString().Utf8Value();
      Prefix p;
      std::string err;
      if (ParseIp(text, &p.addr)) {
        p.len = p.addr.family == 4 ? 32 : 128;
      } else if (!ParsePrefix(text, &p, &err)) {
        throw Napi::TypeError::New(env, "capture peer " + text + ": " + err);
      }
      f.peers.push_back(p);
    }
  }
  return f;
}

Napi::Value CaptureResult(Napi::Env env, const CaptureCounters& c, std::vector<uint8_t>& data) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("active", c.active);
  o.Set("recorded", Napi::Number::New(env, static_cast<double>(c.recorded)));
  o.Set("lost", Napi::Number::New(env, static_cast<double>(c.lost)));
  o.Set("records", Napi::Buffer<uint8_t>::Copy(env, data.data(), data.size()));
  return o;
}

class EngineWrap : public Napi::ObjectWrap<EngineWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Engine",
                       {InstanceMethod<&EngineWrap::SetPeers>("setPeers"), InstanceMethod<&EngineWrap::Start>("start"),
                        InstanceMethod<&EngineWrap::Stats>("stats"), InstanceMethod<&EngineWrap::Close>("close"),
                        InstanceMethod<&EngineWrap::StartCapture>("startCapture"),
                        InstanceMethod<&EngineWrap::ReadCapture>("readCapture"),
                        InstanceMethod<&EngineWrap::StopCapture>("stopCapture"),
                        InstanceAccessor<&EngineWrap::TunName>("tunName"), InstanceAccessor<&EngineWrap::TunIndex>("tunIndex"),
                        InstanceAccessor<&EngineWrap::Port>("port")});
  }

  explicit EngineWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<EngineWrap>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "Engine(options) needs an options object");
    const EngineOptions opts = ParseEngineOptions(info[0].As<Napi::Object>());
    Guard(env, [&] { engine_ = Engine::Open(opts); });
    env_ = env;
    // Process exit: stop and join the threads before the runtime goes away, even if never closed.
    napi_add_env_cleanup_hook(env, &EngineWrap::CleanupHook, this);
    hooked_ = true;
  }

  ~EngineWrap() override { Shutdown(); }

 private:
  static void CleanupHook(void* arg) { static_cast<EngineWrap*>(arg)->Shutdown(); }

  void Shutdown() {
    if (hooked_) {
      napi_remove_env_cleanup_hook(env_, &EngineWrap::CleanupHook, this);
      hooked_ = false;
    }
    if (engine_) engine_->Close();
  }

  Engine& Live(Napi::Env env) {
    if (!engine_) throw Napi::Error::New(env, "engine is closed");
    return *engine_;
  }

  Napi::Value SetPeers(const Napi::CallbackInfo& info) {
    const std::vector<RouteSpec> specs = ToSpecs(info[0]);
    Guard(info.Env(), [&] { Live(info.Env()).SetPeers(specs); });
    return info.Env().Undefined();
  }

  Napi::Value Start(const Napi::CallbackInfo& info) {
    Guard(info.Env(), [&] { Live(info.Env()).Start(); });
    return info.Env().Undefined();
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Shutdown();
    return info.Env().Undefined();
  }

  Napi::Value StartCapture(const Napi::CallbackInfo& info) {
    const CaptureFilter f = ToCaptureFilter(info.Length() > 0 ? info[0] : info.Env().Undefined());
    Guard(info.Env(), [&] { Live(info.Env()).StartCapture(f); });
    return info.Env().Undefined();
  }

  // The records come back as one Buffer per poll (layout in engine/capture_ring.h), never one call per packet.
  Napi::Value ReadCapture(const Napi::CallbackInfo& info) {
    std::vector<uint8_t> data;
    const CaptureCounters c = Live(info.Env()).ReadCapture([&](const uint8_t* p, size_t n) { data.assign(p, p + n); });
    return CaptureResult(info.Env(), c, data);
  }

  Napi::Value StopCapture(const Napi::CallbackInfo& info) {
    std::vector<uint8_t> data;
    if (!engine_) return CaptureResult(info.Env(), CaptureCounters{false, 0, 0}, data);
    const CaptureCounters c = engine_->StopCapture([&](const uint8_t* p, size_t n) { data.assign(p, p + n); });
    return CaptureResult(info.Env(), c, data);
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const EngineStats s = Live(env).Stats();
    Napi::Object out = Napi::Object::New(env);
    out.Set("tx", Direction(env, s.txPackets, s.txBytes));
    out.Set("rx", Direction(env, s.rxPackets, s.rxBytes));
    Napi::Object drops = Napi::Object::New(env);
    for (int i = 0; i < kDropCount; i++) drops.Set(DropName(i), Napi::Number::New(env, static_cast<double>(s.drops[i])));
    out.Set("drops", drops);
    out.Set("arpReplies", Napi::Number::New(env, static_cast<double>(s.arpReplies)));
    Napi::Object offloads = Napi::Object::New(env);
    offloads.Set("vnetHdr", s.offloads.vnetHdr);
    offloads.Set("tso", s.offloads.tso);
    offloads.Set("uso", s.offloads.uso);
    offloads.Set("udpGso", s.offloads.udpGso);
    offloads.Set("udpGro", s.offloads.udpGro);
    out.Set("offloads", offloads);
    const auto d = [](uint64_t v) { return static_cast<double>(v); };
    out.Set("offload", NumberFields(env, {{"gsoPackets", d(s.offload.gsoPackets)}, {"gsoSegments", d(s.offload.gsoSegments)},
                                          {"udpGsoSends", d(s.offload.udpGsoSends)}, {"groPackets", d(s.offload.groPackets)},
                                          {"groSegments", d(s.offload.groSegments)}, {"udpGroBatches", d(s.offload.udpGroBatches)}}));
    out.Set("replyPoll", NumberFields(env, {{"windowUs", s.replyPoll.windowUs}, {"hits", d(s.replyPoll.hits)}, {"misses", d(s.replyPoll.misses)},
                                            {"skipped", d(s.replyPoll.skipped)}}));
    out.Set("threads", NumberFields(env, {{"mode", s.threads.mode}, {"current", s.threads.current}, {"splits", d(s.threads.splits)},
                                          {"merges", d(s.threads.merges)}}));
    out.Set("offloadNotes", s.offloadNotes);
    Napi::Array peers = Napi::Array::New(env, s.peers.size());
    for (size_t i = 0; i < s.peers.size(); i++) {
      const PeerStats& p = s.peers[i];
      Napi::Object o = Napi::Object::New(env);
      o.Set("subnet", p.subnet);
      o.Set("publicIP", p.publicIp);
      o.Set("port", Napi::Number::New(env, p.port));
      if (!p.mac.empty()) o.Set("mac", p.mac);
      o.Set("tx", Direction(env, p.txPackets, p.txBytes));
      o.Set("rx", Direction(env, p.rxPackets, p.rxBytes));
      o.Set("lastRxMs", Napi::Number::New(env, static_cast<double>(p.lastRxMs)));
      peers.Set(static_cast<uint32_t>(i), o);
    }
    out.Set("peers", peers);
    Napi::Object capture = Napi::Object::New(env);
    capture.Set("active", s.captureActive);
    capture.Set("lost", Napi::Number::New(env, static_cast<double>(s.captureLost)));
    out.Set("capture", capture);
    return out;
  }

  Napi::Value TunName(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), Live(info.Env()).tunName()); }
  Napi::Value TunIndex(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), Live(info.Env()).tunIndex()); }
  Napi::Value Port(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), Live(info.Env()).port()); }

  std::unique_ptr<Engine> engine_;
  napi_env env_ = nullptr;
  bool hooked_ = false;
};

}  // namespace

void InitEngine(Napi::Env env, Napi::Object exports) { exports.Set("Engine", EngineWrap::Define(env)); }

}  // namespace flannelts
