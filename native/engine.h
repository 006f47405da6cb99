#pragma once
#include <napi.h>
namespace flannelts {
// Registers Engine and the pure packet helpers used by unit tests.
void InitEngine(Napi::Env env, Napi::Object exports);
}
