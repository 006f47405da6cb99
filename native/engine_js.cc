// JavaScript bindings: the Engine class and the pure packet helpers (classifyPacket, decrementTTL,
// icmpUnreachable, RouteTable) that the unit tests call without root.
#include <napi.h>

#include <cstring>
#include <memory>
#include <initializer_list>
#include <optional>
#include <utility>
#include <stdexcept>

#include "base/ip_packet.h"
#include "encap/vxlan.h"
#include "engine/engine.h"
#include "engine/reply_poll.h"
#include "engine/routes.h"
#include "base/errors.h"

namespace flannelts {

namespace {

// Runs fn, turning C++ errors into JavaScript ones: SysError becomes an Error with .code = errno
// name (like Node's own system errors), invalid_argument a TypeError. (Built without RTTI, so no
// dynamic_cast: one catch clause per type.)
template <typename Fn>
void Guard(Napi::Env env, Fn&& fn) {
  try {
    fn();
  } catch (const Napi::Error&) {
    throw;
  } catch (const SysError& e) {
    Napi::Error err = Napi::Error::New(env, e.what());
    err.Set("code", Napi::String::New(env, ErrnoName(e.err())));
    throw err;
  } catch (const std::invalid_argument& e) {
    throw Napi::TypeError::New(env, e.what());
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, e.what());
  }
}

std::string OptString(const Napi::Object& o, const char* key, const std::string& def) {
  const Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return def;
  if (!v.IsString()) throw Napi::TypeError::New(o.Env(), std::string("EngineOptions.") + key + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

uint16_t ToPort(const Napi::Value& v, const std::string& what, bool allowZero) {
  if (!v.IsNumber()) throw Napi::TypeError::New(v.Env(), what + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= (allowZero ? 0 : 1) && d <= 65535) || d != static_cast<double>(static_cast<int>(d)))
    throw Napi::TypeError::New(v.Env(), what + " must be an integer port");
  return static_cast<uint16_t>(d);
}

std::vector<RouteSpec> ToSpecs(const Napi::Value& v) {
  Napi::Env env = v.Env();
  if (!v.IsArray()) throw Napi::TypeError::New(env, "peers must be an array of {subnet, publicIP, port}");
  const Napi::Array arr = v.As<Napi::Array>();
  std::vector<RouteSpec> specs;
  specs.reserve(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); i++) {
    const Napi::Value item = arr.Get(i);
    const std::string where = "peer[" + std::to_string(i) + "]";
    if (!item.IsObject()) throw Napi::TypeError::New(env, where + " must be an object");
    const Napi::Object o = item.As<Napi::Object>();
    if (!o.Get("subnet").IsString() || !o.Get("publicIP").IsString())
      throw Napi::TypeError::New(env, where + ": subnet and publicIP must be strings");
    RouteSpec spec{o.Get("subnet").As<Napi::String>().Utf8Value(), o.Get("publicIP").As<Napi::String>().Utf8Value(),
                   ToPort(o.Get("port"), where + ".port", false), ""};
    const Napi::Value mac = o.Get("mac");
    if (!mac.IsUndefined() && !mac.IsNull()) {
      if (!mac.IsString()) throw Napi::TypeError::New(env, where + ".mac must be a string");
      spec.mac = mac.As<Napi::String>().Utf8Value();
    }
    specs.push_back(std::move(spec));
  }
  return specs;
}

// An object of number fields, e.g. {hits: 7, misses: 2}; counters are exact in a double up to 2^53.
Napi::Object NumberFields(Napi::Env env, std::initializer_list<std::pair<const char*, double>> fields) {
  Napi::Object o = Napi::Object::New(env);
  for (const auto& [name, value] : fields) o.Set(name, Napi::Number::New(env, value));
  return o;
}

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

Napi::Buffer<uint8_t> NeedBuffer(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsBuffer()) throw Napi::TypeError::New(info.Env(), "expected a Buffer");
  return info[0].As<Napi::Buffer<uint8_t>>();
}

// EngineOptions.<key> as an integer in [lo, hi]; nothing when absent. loNote names what lo means.
std::optional<int> OptIntIn(const Napi::Object& o, const char* key, int lo, int hi, const char* loNote = "") {
  const Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return std::nullopt;
  const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : lo - 1.0;
  if (!(d >= lo && d <= hi) || d != static_cast<double>(static_cast<int>(d)))
    throw Napi::TypeError::New(o.Env(), std::string("EngineOptions.") + key + " must be an integer from " + std::to_string(lo) + loNote + " to " + std::to_string(hi));
  return static_cast<int>(d);
}

// A file descriptor: an integer >= 0.
int ToFd(const Napi::Value& v, const std::string& what) {
  const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
  if (!(d >= 0 && d <= 2147483647) || d != static_cast<double>(static_cast<int>(d)))
    throw Napi::TypeError::New(v.Env(), what + " must be a file descriptor (an integer >= 0)");
  return static_cast<int>(d);
}

// The test seam. tun: {fd, vnetHdr, tso, uso}: an open TUN(-like) fd with the offloads already
// negotiated on it, instead of opening tunName; sockets: {fd4, fd6?}: bound UDP sockets instead of
// binding bindV4/bindV6:port. The engine works on duplicates; the caller closes its own fds.
void ParseInjected(const Napi::Object& o, EngineOptions* opts) {
  Napi::Env env = o.Env();
  const Napi::Value tun = o.Get("tun");
  if (!tun.IsUndefined()) {
    if (!tun.IsObject()) throw Napi::TypeError::New(env, "EngineOptions.tun must be {fd, vnetHdr, tso, uso}");
    if (!o.Get("tunName").IsUndefined()) throw Napi::TypeError::New(env, "EngineOptions: give tunName or tun, not both");
    const Napi::Object t = tun.As<Napi::Object>();
    opts->tunFd = ToFd(t.Get("fd"), "EngineOptions.tun.fd");
    opts->tunOffloads.vnetHdr = t.Get("vnetHdr").ToBoolean().Value();
    opts->tunOffloads.tso = t.Get("tso").ToBoolean().Value();
    opts->tunOffloads.uso = t.Get("uso").ToBoolean().Value();
  }
  const Napi::Value sockets = o.Get("sockets");
  if (!sockets.IsUndefined()) {
    if (!sockets.IsObject()) throw Napi::TypeError::New(env, "EngineOptions.sockets must be {fd4, fd6?}");
    const Napi::Object so = sockets.As<Napi::Object>();
    opts->udp.adoptFd4 = ToFd(so.Get("fd4"), "EngineOptions.sockets.fd4");
    if (!so.Get("fd6").IsUndefined()) opts->udp.adoptFd6 = ToFd(so.Get("fd6"), "EngineOptions.sockets.fd6");
  }
}

// encap: "vxlan" with vni, mac (our VTEP MAC), optional vtep4 (our VTEP IPv4 address, for ARP),
// innerMtu and sendSockets (outer source ports to spread flows over); absent or "flannel-udp": the
// udp backend.
void ParseEncap(const Napi::Object& o, EngineOptions* opts) {
  Napi::Env env = o.Env();
  const std::string encap = OptString(o, "encap", "flannel-udp");
  if (encap == "flannel-udp") return;
  if (encap != "vxlan") throw Napi::TypeError::New(env, "EngineOptions.encap must be \"flannel-udp\" or \"vxlan\"");
  VxlanOptions vx;
  const Napi::Value vni = o.Get("vni");
  if (!vni.IsNumber()) throw Napi::TypeError::New(env, "EngineOptions.vni must be a number");
  const double v = vni.As<Napi::Number>().DoubleValue();
  if (!(v >= 0 && v <= 0xffffff) || v != static_cast<double>(static_cast<uint32_t>(v)))
    throw Napi::TypeError::New(env, "EngineOptions.vni must be an integer from 0 to 16777215");
  vx.vni = static_cast<uint32_t>(v);
  const std::string mac = OptString(o, "mac", "");
  if (!ParseMac(mac.data(), mac.size(), &vx.mac) || vx.mac.IsZero())
    throw Napi::TypeError::New(env, "EngineOptions.mac must be a MAC address (aa:bb:cc:dd:ee:ff), got \"" + mac + "\"");
  const std::string vtep4 = OptString(o, "vtep4", "");
  if (!vtep4.empty()) {
    IpAddr a;
    if (!ParseIp(vtep4, &a) || a.family != 4) throw Napi::TypeError::New(env, "EngineOptions.vtep4 must be an IPv4 address");
    std::memcpy(vx.vtep4, a.bytes, 4);
    vx.hasVtep4 = true;
  }
  if (const std::optional<int> mtu = OptIntIn(o, "innerMtu", 68, 65535)) vx.innerMtu = static_cast<size_t>(*mtu);
  if (const std::optional<int> n = OptIntIn(o, "sendSockets", 0, 64)) opts->udp.sendSockets = *n;
  opts->engine.encap = [vx](const UdpConn& sockets) { return MakeVxlan(vx, sockets.pool4(), sockets.pool6()); };
}

// ---- Engine ----

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
    const Napi::Object o = info[0].As<Napi::Object>();
    EngineOptions opts;
    opts.tun.name = OptString(o, "tunName", "flannel%d");
    opts.udp.bindV4 = OptString(o, "bindV4", "0.0.0.0");
    opts.udp.bindV6 = OptString(o, "bindV6", "");
    if (!o.Get("port").IsUndefined()) opts.udp.port = ToPort(o.Get("port"), "EngineOptions.port", true);
    opts.engine.allowUnknownSource = o.Get("allowUnknownSource").ToBoolean().Value();
    // Offloads default on; `offload: false` or `offload: {tso: false, ...}` turns them off.
    const Napi::Value off = o.Get("offload");
    auto want = [&](const char* key) {
      if (off.IsUndefined() || off.IsNull()) return true;
      if (off.IsBoolean()) return off.As<Napi::Boolean>().Value();
      if (!off.IsObject()) throw Napi::TypeError::New(env, "EngineOptions.offload must be a boolean or an object");
      const Napi::Value v = off.As<Napi::Object>().Get(key);
      return v.IsUndefined() ? true : v.ToBoolean().Value();
    };
    opts.tun.vnetHdr = want("vnetHdr");
    opts.tun.tso = opts.tun.vnetHdr && want("tso");
    opts.tun.uso = opts.tun.tso && want("uso");
    opts.udp.gso = want("udpGso");
    opts.udp.gro = want("udpGro");
    ParseEncap(o, &opts);
    ParseInjected(o, &opts);
    // After a small send the TX thread polls this long for the answer; 0 = off.
    if (const std::optional<int> us = OptIntIn(o, "replyPollUs", 0, kMaxReplyPollUs, " (off)")) opts.engine.replyPollUs = *us;
    // 0: one thread for both directions, two while both are busy; 1 or 2 fixed (thread_mode.h).
    if (const std::optional<int> n = OptIntIn(o, "dataThreads", 0, 2, " (automatic)")) opts.engine.dataThreads = *n;
    if (const std::optional<int> p = OptIntIn(o, "splitAtPercent", 1, 100)) opts.engine.splitAtPercent = *p;
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

  // The records come back as one Buffer per poll (layout in capture.h), never one call per packet.
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

// ---- RouteTable (standalone, for tests and control-side checks) ----

class RouteTableWrap : public Napi::ObjectWrap<RouteTableWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "RouteTable",
                       {InstanceMethod<&RouteTableWrap::Set>("set"), InstanceMethod<&RouteTableWrap::Lookup>("lookup"),
                        InstanceMethod<&RouteTableWrap::IsPeer>("isPeerAddress"),
                        InstanceMethod<&RouteTableWrap::LookupMany>("lookupMany")});
  }
  explicit RouteTableWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<RouteTableWrap>(info) {}

 private:
  Napi::Value Set(const Napi::CallbackInfo& info) {
    const std::vector<RouteSpec> specs = ToSpecs(info[0]);
    Guard(info.Env(), [&] { table_ = RouteTable::Build(specs, [](const std::string&) { return std::make_shared<PeerCounters>(); }); });
    return info.Env().Undefined();
  }

  IpAddr Addr(const Napi::CallbackInfo& info) {
    IpAddr a;
    if (info.Length() < 1 || !info[0].IsString() || !ParseIp(info[0].As<Napi::String>().Utf8Value(), &a))
      throw Napi::TypeError::New(info.Env(), "expected an IPv4 or IPv6 address string");
    return a;
  }

  Napi::Value Lookup(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const IpAddr a = Addr(info);
    const RouteEntry* e = table_ ? table_->Lookup(a) : nullptr;
    if (!e) return env.Null();
    Napi::Object o = Napi::Object::New(env);
    o.Set("subnet", FormatPrefix(e->subnet));
    o.Set("publicIP", FormatIp(e->publicIp));
    o.Set("port", Napi::Number::New(env, e->port));
    return o;
  }

  // lookupMany(packed IPv4 addresses) -> how many matched: the lookup cost without a string parse per
  // call (micro benchmarks).
  Napi::Value LookupMany(const Napi::CallbackInfo& info) {
    const Napi::Buffer<uint8_t> b = NeedBuffer(info);
    uint32_t hits = 0;
    IpAddr a;
    a.family = 4;
    for (size_t off = 0; off + 4 <= b.Length(); off += 4) {
      std::memcpy(a.bytes, b.Data() + off, 4);
      if (table_ && table_->Lookup(a)) hits++;
    }
    return Napi::Number::New(info.Env(), hits);
  }

  Napi::Value IsPeer(const Napi::CallbackInfo& info) {
    const IpAddr a = Addr(info);
    return Napi::Boolean::New(info.Env(), table_ && table_->IsPeerAddress(a));
  }

  std::unique_ptr<RouteTable> table_;
};

// ---- pure helpers ----

Napi::Value ClassifyJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Napi::Buffer<uint8_t> b = NeedBuffer(info);
  const PacketInfo p = ClassifyPacket(b.Data(), b.Length());
  Napi::Object o = Napi::Object::New(env);
  o.Set("kind", PacketClassName(p.cls));
  if (p.cls == PacketClass::kIPv4 || p.cls == PacketClass::kIPv6) {
    o.Set("length", Napi::Number::New(env, static_cast<double>(p.length)));
    o.Set("src", FormatIp(p.src));
    o.Set("dst", FormatIp(p.dst));
  }
  return o;
}

Napi::Value DecrementTtlJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Buffer<uint8_t> b = NeedBuffer(info);
  const PacketInfo p = ClassifyPacket(b.Data(), b.Length());
  if (p.cls != PacketClass::kIPv4 && p.cls != PacketClass::kIPv6) return Napi::String::New(env, "malformed");
  return Napi::String::New(env, DecrementTtl(b.Data(), p.length, p.cls) == TtlResult::kOk ? "ok" : "expired");
}

Napi::Value IcmpUnreachableJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Napi::Buffer<uint8_t> b = NeedBuffer(info);
  const PacketInfo p = ClassifyPacket(b.Data(), b.Length());
  uint8_t out[kIcmpMaxLen];
  const size_t n = BuildIcmpUnreachable(b.Data(), b.Length(), p.cls, out, sizeof out);
  if (n == 0) return env.Null();
  return Napi::Buffer<uint8_t>::Copy(env, out, n);
}

// replyPollWindows(maxUs, outcomes): the window ReplyPollWindow gives each of a run of small sends
// (0 = not polled), consuming the next outcome (answered or not) for each send it polls after.
Napi::Value ReplyPollWindowsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsArray()) throw Napi::TypeError::New(env, "replyPollWindows(maxUs, outcomes[]) needs a number and an array");
  ReplyPollWindow w(info[0].As<Napi::Number>().Int32Value());
  const Napi::Array outcomes = info[1].As<Napi::Array>();
  Napi::Array out = Napi::Array::New(env, outcomes.Length());
  for (uint32_t i = 0; i < outcomes.Length(); i++) {
    const int us = w.Next();
    if (us > 0) w.Done(outcomes.Get(i).ToBoolean().Value());
    out.Set(i, Napi::Number::New(env, us));
  }
  return out;
}

// threadModeNext(splitAtPercent, split, wallNs, cpuNs, tunBusyNs, sockBusyNs): ThreadModeDecider::Next.
Napi::Value ThreadModeNextJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bool ok = info.Length() >= 6 && info[0].IsNumber() && info[1].IsBoolean();
  for (size_t i = 2; ok && i < 6; i++) ok = info[i].IsNumber();
  if (!ok) throw Napi::TypeError::New(env, "threadModeNext(splitAtPercent, split, wallNs, cpuNs, tunBusyNs, sockBusyNs) needs a number, a boolean and four numbers");
  const ThreadModeDecider d(info[0].As<Napi::Number>().Int32Value());
  auto ns = [&](size_t i) { return info[i].As<Napi::Number>().Int64Value(); };
  return Napi::Boolean::New(env, d.Next(info[1].As<Napi::Boolean>().Value(), ns(2), ns(3), ns(4), ns(5)));
}

}  // namespace

void InitEngine(Napi::Env env, Napi::Object exports) {
  exports.Set("Engine", EngineWrap::Define(env));
  exports.Set("RouteTable", RouteTableWrap::Define(env));
  exports.Set("classifyPacket", Napi::Function::New(env, ClassifyJs, "classifyPacket"));
  exports.Set("decrementTTL", Napi::Function::New(env, DecrementTtlJs, "decrementTTL"));
  exports.Set("icmpUnreachable", Napi::Function::New(env, IcmpUnreachableJs, "icmpUnreachable"));
  exports.Set("replyPollWindows", Napi::Function::New(env, ReplyPollWindowsJs, "replyPollWindows"));
  exports.Set("threadModeNext", Napi::Function::New(env, ThreadModeNextJs, "threadModeNext"));
  // The engine's drop reasons in enum order: capture records carry the index.
  Napi::Array reasons = Napi::Array::New(env, kDropCount);
  for (int i = 0; i < kDropCount; i++) reasons.Set(static_cast<uint32_t>(i), DropName(i));
  exports.Set("dropReasons", reasons);
}

}  // namespace flannelts
