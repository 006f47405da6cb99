#pragma once
#include <napi.h>
namespace flannelts {
// Registers NetlinkSocket: a raw AF_NETLINK socket; the codec lives in TypeScript.
void InitNetlink(Napi::Env env, Napi::Object exports);
}
