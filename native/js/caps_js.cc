// dropCapabilities(keep: number[]) -> {threads, unreached: number[]} for JavaScript
// (src/security/caps.ts); host/caps.h does the work. Throws on failure.
#include <napi.h>

#include <stdexcept>
#include <string>

#include "host/caps.h"
#include "js/args.h"

namespace flannelts {

namespace {

Napi::Value DropCapabilitiesJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray()) throw Napi::TypeError::New(env, "dropCapabilities(keep: number[])");
  const int last = LastCapability();
  uint64_t keep = 0;
  Napi::Array arr = info[0].As<Napi::Array>();
  for (uint32_t i = 0; i < arr.Length(); i++) {
    Napi::Value v = arr.Get(i);
    if (!v.IsNumber()) throw Napi::TypeError::New(env, "capability numbers expected");
    const int cap = v.As<Napi::Number>().Int32Value();
    if (cap < 0 || cap > last) throw Napi::RangeError::New(env, "capability " + std::to_string(cap) + " out of range");
    keep |= uint64_t{1} << cap;
  }
  DroppedCapabilities r;
  Guard(env, [&] { r = DropCapabilities(keep); });
  Napi::Object out = Napi::Object::New(env);
  out.Set("threads", Napi::Number::New(env, r.threads));
  Napi::Array un = Napi::Array::New(env, r.unreached.size());
  for (size_t i = 0; i < r.unreached.size(); i++) un.Set(static_cast<uint32_t>(i), Napi::Number::New(env, r.unreached[i]));
  out.Set("unreached", un);
  return out;
}

}  // namespace

void InitCaps(Napi::Env env, Napi::Object exports) { exports.Set("dropCapabilities", Napi::Function::New(env, DropCapabilitiesJs)); }

}  // namespace flannelts
