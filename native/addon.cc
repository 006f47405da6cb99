// Module entry: each native concept registers its own exports.
#include <napi.h>

#include "netlink.h"
#include "caps.h"

namespace flannelts {
void InitEngine(Napi::Env env, Napi::Object exports);  // engine_js.cc
void InitOffload(Napi::Env env, Napi::Object exports);  // offload_js.cc
void InitVxlan(Napi::Env env, Napi::Object exports);    // vxlan_js.cc
void InitWakeProbe(Napi::Env env, Napi::Object exports);  // wake_probe.cc
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  flannelts::InitEngine(env, exports);
  flannelts::InitNetlink(env, exports);
  flannelts::InitOffload(env, exports);
  flannelts::InitVxlan(env, exports);
  flannelts::InitCaps(env, exports);
  flannelts::InitWakeProbe(env, exports);
  return exports;
}

NODE_API_MODULE(flannelts, Init)
