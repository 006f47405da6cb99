// Shared argument parsing for the binding files; see args.h.
#include "js/args.h"

#include "routes/routes.h"

namespace flannelts {

Napi::Buffer<uint8_t> ArgBuffer(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || !info[i].IsBuffer()) throw Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + " must be a Buffer");
  return info[i].As<Napi::Buffer<uint8_t>>();
}

Mac ArgMac(const Napi::CallbackInfo& info, size_t i) {
  Mac m;
  if (info.Length() <= i || !info[i].IsString()) throw Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + " must be a MAC string");
  const std::string s = info[i].As<Napi::String>().Utf8Value();
  if (!ParseMac(s.data(), s.size(), &m)) throw Napi::TypeError::New(info.Env(), "not a MAC address: " + s);
  return m;
}

uint32_t ArgVni(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || !info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), "vni must be a number");
  const double d = info[i].As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= 0xffffff)) throw Napi::TypeError::New(info.Env(), "vni must be 0..16777215");
  return static_cast<uint32_t>(d);
}

std::string OptString(const Napi::Object& o, const char* what, const char* key, const std::string& def) {
  const Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return def;
  if (!v.IsString()) throw Napi::TypeError::New(o.Env(), std::string(what) + "." + key + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

std::optional<int> OptIntIn(const Napi::Object& o, const char* what, const char* key, int lo, int hi, const char* loNote) {
  const Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return std::nullopt;
  const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : lo - 1.0;
  if (!(d >= lo && d <= hi) || d != static_cast<double>(static_cast<int>(d)))
    throw Napi::TypeError::New(o.Env(), std::string(what) + "." + key + " must be an integer from " + std::to_string(lo) + loNote + " to " + std::to_string(hi));
  return static_cast<int>(d);
}

uint16_t ToPort(const Napi::Value& v, const std::string& what, bool allowZero) {
  if (!v.IsNumber()) throw Napi::TypeError::New(v.Env(), what + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= (allowZero ? 0 : 1) && d <= 65535) || d != static_cast<double>(static_cast<int>(d)))
    throw Napi::TypeError::New(v.Env(), what + " must be an integer port");
  return static_cast<uint16_t>(d);
}

int ToFd(const Napi::Value& v, const std::string& what) {
  const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
  if (!(d >= 0 && d <= 2147483647) || d != static_cast<double>(static_cast<int>(d)))
    throw Napi::TypeError::New(v.Env(), what + " must be a file descriptor (an integer >= 0)");
  return static_cast<int>(d);
}

std::vector<RouteSpec> ToSpecs(const Napi::Value& v) {
  Napi::Env env = v.Env();
  if (!v.IsArray()) throw Napi::TypeError::New(env, "peers must be an array of {subnet, publicIP, port}");
  const Napi::Array arr = v.As<Napi::Array>();
  std::vector<RouteSpec> specs;
  specs.reserve(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); i++) {
    const Napi::Value item = arr.Get(i);
    const std::string where = "peer[" + std::to_string(i) + "]";
    if (!item.IsObject()) throw Napi::TypeError::New(env, where + " must be an object");
    const Napi::Object o = item.As<Napi::Object>();
    if (!o.Get("subnet").IsString() || !o.Get("publicIP").IsString())
      throw Napi::TypeError::New(env, where + ": subnet and publicIP must be strings");
    const Napi::Value key = o.Get("publicKey");
    if (!key.IsUndefined() && !key.IsNull() && !key.IsString()) throw Napi::TypeError::New(env, where + ".publicKey must be a string");
    const std::string publicKey = key.IsString() ? key.As<Napi::String>().Utf8Value() : "";
    const std::string publicIp = o.Get("publicIP").As<Napi::String>().Utf8Value();
    // A WireGuard peer not heard from yet has no endpoint: publicIP "" and port 0.
    RouteSpec spec{o.Get("subnet").As<Napi::String>().Utf8Value(), publicIp,
                   ToPort(o.Get("port"), where + ".port", !publicKey.empty() && publicIp.empty()), "", publicKey};
    const Napi::Value mac = o.Get("mac");
    if (!mac.IsUndefined() && !mac.IsNull()) {
      if (!mac.IsString()) throw Napi::TypeError::New(env, where + ".mac must be a string");
      spec.mac = mac.As<Napi::String>().Utf8Value();
    }
    specs.push_back(std::move(spec));
  }
  return specs;
}

Napi::Object NumberFields(Napi::Env env, std::initializer_list<std::pair<const char*, double>> fields) {
  Napi::Object o = Napi::Object::New(env);
  for (const auto& [name, value] : fields) o.Set(name, Napi::Number::New(env, value));
  return o;
}

}  // namespace flannelts
