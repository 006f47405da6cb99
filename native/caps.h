#pragma once
#include <napi.h>
namespace flannelts {
// Registers dropCapabilities(keep): least privilege once setup is done (see caps.cc).
void InitCaps(Napi::Env env, Napi::Object exports);
}
