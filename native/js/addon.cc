// Module entry (flannelts.node): each binding file registers its own exports.
#include <napi.h>

namespace flannelts {
void InitEngine(Napi::Env env, Napi::Object exports);      // engine_js.cc: Engine
void InitRouteTable(Napi::Env env, Napi::Object exports);  // route_table_js.cc: RouteTable
void InitPacket(Napi::Env env, Napi::Object exports);      // packet_js.cc: classifyPacket, decrementTTL, icmpUnreachable, dropReasons
void InitPolicies(Napi::Env env, Napi::Object exports);    // policy_js.cc: replyPollWindows, threadModeNext
void InitOffload(Napi::Env env, Napi::Object exports);     // offload_js.cc: gsoSplit, groCoalesce, ...
void InitVxlan(Napi::Env env, Napi::Object exports);       // vxlan_js.cc: vxlanEncap, vxlanParse, arpReply, flowHash
void InitNetlink(Napi::Env env, Napi::Object exports);     // netlink_js.cc: NetlinkSocket
void InitCaps(Napi::Env env, Napi::Object exports);        // caps_js.cc: dropCapabilities
void InitWakeProbe(Napi::Env env, Napi::Object exports);   // wake_probe_js.cc: wakeProbe
void InitProber(Napi::Env env, Napi::Object exports);      // prober.cc: EchoProber, echo codec
void InitSdNotify(Napi::Env env, Napi::Object exports);    // sd_notify.cc: sdNotify
void InitWireGuard(Napi::Env env, Napi::Object exports);   // wireguard_device_js.cc: WireGuard device and crypto
}  // namespace flannelts

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  flannelts::InitEngine(env, exports);
  flannelts::InitRouteTable(env, exports);
  flannelts::InitPacket(env, exports);
  flannelts::InitPolicies(env, exports);
  flannelts::InitOffload(env, exports);
  flannelts::InitVxlan(env, exports);
  flannelts::InitNetlink(env, exports);
  flannelts::InitCaps(env, exports);
  flannelts::InitWakeProbe(env, exports);
  flannelts::InitProber(env, exports);
  flannelts::InitSdNotify(env, exports);
  flannelts::InitWireGuard(env, exports);
  return exports;
}

NODE_API_MODULE(flannelts, Init)
