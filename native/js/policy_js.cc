// The engine's pure thread policies for JavaScript unit tests: the reply-polling window
// (engine/reply_poll.h) and the one-or-two-threads decision (engine/thread_mode.h).
#include <napi.h>

#include "engine/reply_poll.h"
#include "engine/thread_mode.h"

namespace flannelts {

namespace {

// replyPollWindows(maxUs, outcomes): the window ReplyPollWindow gives each of a run of small sends
// (0 = not polled), consuming the next outcome (answered or not) for each send it polls after.
Napi::Value ReplyPollWindowsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsArray()) throw Napi::TypeError::New(env, "replyPollWindows(maxUs, outcomes[]) needs a number and an array");
  ReplyPollWindow w(info[0].As<Napi::Number>().Int32Value());
  const Napi::Array outcomes = info[1].As<Napi::Array>();
  Napi::Array out = Napi::Array::New(env, outcomes.Length());
  for (uint32_t i = 0; i < outcomes.Length(); i++) {
    const int us = w.Next();
    if (us > 0) w.Done(outcomes.Get(i).ToBoolean().Value());
    out.Set(i, Napi::Number::New(env, us));
  }
  return out;
}

// threadModeNext(splitAtPercent, split, wallNs, cpuNs, tunBusyNs, sockBusyNs): ThreadModeDecider::Next.
Napi::Value ThreadModeNextJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bool ok = info.Length() >= 6 && info[0].IsNumber() && info[1].IsBoolean();
  for (size_t i = 2; ok && i < 6; i++) ok = info[i].IsNumber();
  if (!ok) throw Napi::TypeError::New(env, "threadModeNext(splitAtPercent, split, wallNs, cpuNs, tunBusyNs, sockBusyNs) needs a number, a boolean and four numbers");
  const ThreadModeDecider d(info[0].As<Napi::Number>().Int32Value());
  auto ns = [&](size_t i) { return info[i].As<Napi::Number>().Int64Value(); };
  return Napi::Boolean::New(env, d.Next(info[1].As<Napi::Boolean>().Value(), ns(2), ns(3), ns(4), ns(5)));
}

}  // namespace

void InitPolicies(Napi::Env env, Napi::Object exports) {
  exports.Set("replyPollWindows", Napi::Function::New(env, ReplyPollWindowsJs, "replyPollWindows"));
  exports.Set("threadModeNext", Napi::Function::New(env, ThreadModeNextJs, "threadModeNext"));
}

}  // namespace flannelts
