#pragma once
// new Engine(options): the JavaScript EngineOptions (src/native/engine.ts) as the native ones.
#include <napi.h>

#include "engine/options.h"

namespace flannelts {

// Throws a TypeError naming the field ("EngineOptions.vni must be ...").
EngineOptions ParseEngineOptions(const Napi::Object& o);

}  // namespace flannelts
