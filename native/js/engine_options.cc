// EngineOptions from JavaScript: the devices (a TUN by name, or the test seam's fds), the offloads to
// ask for, the wire format and its fields, the thread knobs. A new wire format adds its parser to
// kEncaps below and its file in encap/.
#include "js/engine_options.h"

#include <cstring>
#include <string>

#include "base/ipaddr.h"
#include "encap/vxlan.h"
#include "encap/wireguard.h"
#include "js/args.h"
#include "js/wireguard_js.h"

namespace flannelts {

namespace {

constexpr const char* kWhat = "EngineOptions";

// vxlan: vni, mac (our VTEP MAC), optional vtep4 (our VTEP IPv4 address, for ARP), innerMtu and
// sendSockets (outer source ports to spread flows over).
void ParseVxlan(const Napi::Object& o, EngineOptions* opts) {
  Napi::Env env = o.Env();
  VxlanOptions vx;
  const Napi::Value vni = o.Get("vni");
  if (!vni.IsNumber()) throw Napi::TypeError::New(env, "EngineOptions.vni must be a number");
  const double v = vni.As<Napi::Number>().DoubleValue();
  if (!(v >= 0 && v <= 0xffffff) || v != static_cast<double>(static_cast<uint32_t>(v)))
    throw Napi::TypeError::New(env, "EngineOptions.vni must be an integer from 0 to 16777215");
  vx.vni = static_cast<uint32_t>(v);
  const std::string mac = OptString(o, kWhat, "mac", "");
  if (!ParseMac(mac.data(), mac.size(), &vx.mac) || vx.mac.IsZero())
    throw Napi::TypeError::New(env, "EngineOptions.mac must be a MAC address (aa:bb:cc:dd:ee:ff), got \"" + mac + "\"");
  const std::string vtep4 = OptString(o, kWhat, "vtep4", "");
  if (!vtep4.empty()) {
    IpAddr a;
    if (!ParseIp(vtep4, &a) || a.family != 4) throw Napi::TypeError::New(env, "EngineOptions.vtep4 must be an IPv4 address");
    std::memcpy(vx.vtep4, a.bytes, 4);
    vx.hasVtep4 = true;
  }
  if (const std::optional<int> mtu = OptIntIn(o, kWhat, "innerMtu", 68, 65535)) vx.innerMtu = static_cast<size_t>(*mtu);
  if (const std::optional<int> n = OptIntIn(o, kWhat, "sendSockets", 0, 64)) opts->udp.sendSockets = *n;
  opts->engine.encap = [vx](const UdpConn& sockets) { return MakeVxlan(vx, sockets.pool4(), sockets.pool6()); };
}

// wireguard: the WireGuardInterface (keys, peers) and, optionally, alsoPortV6: the IPv6 port the
// device also answers on (flannel's leases advertise ListenPortV6 for IPv6 in every Mode).
void ParseWireGuard(const Napi::Object& o, EngineOptions* opts) {
  std::shared_ptr<WgInterface> iface = UnwrapWgInterface(o.Get("wireguard"));
  if (!o.Get("alsoPortV6").IsUndefined()) opts->udp.alsoPortV6 = ToPort(o.Get("alsoPortV6"), "EngineOptions.alsoPortV6", true);
  opts->engine.encap = [iface](const UdpConn& sockets) { return MakeWireGuard(iface, sockets.fd4(), sockets.fd6()); };
}

// The wire formats by their EngineOptions.encap name; flannel-udp is the engine's default.
struct EncapParser {
  const char* name;
  void (*parse)(const Napi::Object& o, EngineOptions* opts);
};
constexpr EncapParser kEncaps[] = {
    {"flannel-udp", [](const Napi::Object&, EngineOptions*) {}},
    {"vxlan", ParseVxlan},
    {"wireguard", ParseWireGuard},
};

void ParseEncap(const Napi::Object& o, EngineOptions* opts) {
  const std::string encap = OptString(o, kWhat, "encap", "flannel-udp");
  for (const EncapParser& p : kEncaps) {
    if (encap == p.name) return p.parse(o, opts);
  }
  throw Napi::TypeError::New(o.Env(), "EngineOptions.encap must be \"flannel-udp\", \"vxlan\" or \"wireguard\"");
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

}  // namespace

EngineOptions ParseEngineOptions(const Napi::Object& o) {
  Napi::Env env = o.Env();
  EngineOptions opts;
  opts.tun.name = OptString(o, kWhat, "tunName", "flannel%d");
  opts.udp.bindV4 = OptString(o, kWhat, "bindV4", "0.0.0.0");
  opts.udp.bindV6 = OptString(o, kWhat, "bindV6", "");
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
  if (const std::optional<int> us = OptIntIn(o, kWhat, "replyPollUs", 0, kMaxReplyPollUs, " (off)")) opts.engine.replyPollUs = *us;
  // 0: one thread for both directions, two while both are busy; 1 or 2 fixed (thread_mode.h).
  if (const std::optional<int> n = OptIntIn(o, kWhat, "dataThreads", 0, 2, " (automatic)")) opts.engine.dataThreads = *n;
  if (const std::optional<int> p = OptIntIn(o, kWhat, "splitAtPercent", 1, 100)) opts.engine.splitAtPercent = *p;
  return opts;
}

}  // namespace flannelts
