// placeholder, replaced by the engine implementation
#include <napi.h>
#include "engine.h"
namespace flannelts { void InitEngine(Napi::Env, Napi::Object) {} }
