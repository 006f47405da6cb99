// wakeProbe(cpuA, cpuB, rounds) -> {medianUs, p90Us} for JavaScript (src/native/wake-probe.ts);
// host/wake_probe.h does the work. A bench tool call: it blocks the calling thread.
#include <napi.h>

#include <sched.h>

#include <string>
#include <thread>

#include "host/wake_probe.h"
#include "js/args.h"

namespace flannelts {

namespace {

Napi::Value WakeProbeJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsNumber())
    throw Napi::TypeError::New(env, "wakeProbe(cpuA, cpuB, rounds): three numbers expected");
  const int cpuA = info[0].As<Napi::Number>().Int32Value(), cpuB = info[1].As<Napi::Number>().Int32Value();
  const int rounds = info[2].As<Napi::Number>().Int32Value();
  const int cpus = static_cast<int>(std::thread::hardware_concurrency());
  for (int c : {cpuA, cpuB})
    if (c < 0 || c >= CPU_SETSIZE || (cpus > 0 && c >= cpus))
      throw Napi::RangeError::New(env, "wakeProbe: CPU " + std::to_string(c) + " does not exist (this machine has " + std::to_string(cpus) + ")");
  if (rounds < 1 || rounds > kMaxWakeRounds) throw Napi::RangeError::New(env, "wakeProbe: rounds must be 1.." + std::to_string(kMaxWakeRounds));
  WakeRoundTrip r{};
  Guard(env, [&] { r = WakeProbe(cpuA, cpuB, rounds); });
  Napi::Object out = Napi::Object::New(env);
  out.Set("medianUs", Napi::Number::New(env, r.medianUs));
  out.Set("p90Us", Napi::Number::New(env, r.p90Us));
  return out;
}

}  // namespace

void InitWakeProbe(Napi::Env env, Napi::Object exports) { exports.Set("wakeProbe", Napi::Function::New(env, WakeProbeJs, "wakeProbe")); }

}  // namespace flannelts
