// The inner-packet helpers (base/ip_packet.h) for JavaScript: classifyPacket, decrementTTL,
// icmpUnreachable, and the drop reason names in enum order (capture records carry the index).
#include <napi.h>

#include "base/drop_reasons.h"
#include "base/ip_packet.h"
#include "js/args.h"

namespace flannelts {

namespace {

Napi::Value ClassifyJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Napi::Buffer<uint8_t> b = ArgBuffer(info, 0);
  const PacketInfo p = ClassifyPacket(b.Data(), b.Length());
  Napi::Object o = Napi::Object::New(env);
  o.Set("kind", PacketClassName(p.cls));
  if (p.cls == PacketClass::kIPv4 || p.cls == PacketClass::kIPv6) {
    o.Set("length", Napi::Number::New(env, static_cast<double>(p.length)));
    o.Set("src", FormatIp(p.src));
    o.Set("dst", FormatIp(p.dst));
  }
  return o;
}

Napi::Value DecrementTtlJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Buffer<uint8_t> b = ArgBuffer(info, 0);
  const PacketInfo p = ClassifyPacket(b.Data(), b.Length());
  if (p.cls != PacketClass::kIPv4 && p.cls != PacketClass::kIPv6) return Napi::String::New(env, "malformed");
  return Napi::String::New(env, DecrementTtl(b.Data(), p.length, p.cls) == TtlResult::kOk ? "ok" : "expired");
}

Napi::Value IcmpUnreachableJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Napi::Buffer<uint8_t> b = ArgBuffer(info, 0);
  const PacketInfo p = ClassifyPacket(b.Data(), b.Length());
  uint8_t out[kIcmpMaxLen];
  const size_t n = BuildIcmpUnreachable(b.Data(), b.Length(), p.cls, out, sizeof out);
  if (n == 0) return env.Null();
  return Napi::Buffer<uint8_t>::Copy(env, out, n);
}

}  // namespace

void InitPacket(Napi::Env env, Napi::Object exports) {
  exports.Set("classifyPacket", Napi::Function::New(env, ClassifyJs, "classifyPacket"));
  exports.Set("decrementTTL", Napi::Function::New(env, DecrementTtlJs, "decrementTTL"));
  exports.Set("icmpUnreachable", Napi::Function::New(env, IcmpUnreachableJs, "icmpUnreachable"));
  Napi::Array reasons = Napi::Array::New(env, kDropCount);
  for (int i = 0; i < kDropCount; i++) reasons.Set(static_cast<uint32_t>(i), DropName(i));
  exports.Set("dropReasons", reasons);
}

}  // namespace flannelts
