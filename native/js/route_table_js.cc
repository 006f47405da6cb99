// The engine's longest-prefix-match table for JavaScript (src/native/packet.ts RouteTable): built and
// looked up on the calling thread, for tests, control-side checks and micro benchmarks.
#include <napi.h>

#include <cstring>
#include <memory>

#include "routes/routes.h"
#include "js/args.h"

namespace flannelts {

namespace {

class RouteTableWrap : public Napi::ObjectWrap<RouteTableWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "RouteTable",
                       {InstanceMethod<&RouteTableWrap::Set>("set"), InstanceMethod<&RouteTableWrap::Lookup>("lookup"),
                        InstanceMethod<&RouteTableWrap::IsPeer>("isPeerAddress"),
                        InstanceMethod<&RouteTableWrap::LookupMany>("lookupMany")});
  }
  explicit RouteTableWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<RouteTableWrap>(info) {}

 private:
  Napi::Value Set(const Napi::CallbackInfo& info) {
    const std::vector<RouteSpec> specs = ToSpecs(info[0]);
    Guard(info.Env(), [&] { table_ = RouteTable::Build(specs, [](const std::string&) { return std::make_shared<PeerCounters>(); }); });
    return info.Env().Undefined();
  }

  IpAddr Addr(const Napi::CallbackInfo& info) {
    IpAddr a;
    if (info.Length() < 1 || !info[0].IsString() || !ParseIp(info[0].As<Napi::String>().Utf8Value(), &a))
      throw Napi::TypeError::New(info.Env(), "expected an IPv4 or IPv6 address string");
    return a;
  }

  Napi::Value Lookup(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const IpAddr a = Addr(info);
    const RouteEntry* e = table_ ? table_->Lookup(a) : nullptr;
    if (!e) return env.Null();
    Napi::Object o = Napi::Object::New(env);
    o.Set("subnet", FormatPrefix(e->subnet));
    o.Set("publicIP", FormatIp(e->publicIp));
    o.Set("port", Napi::Number::New(env, e->port));
    return o;
  }

  // lookupMany(packed IPv4 addresses) -> how many matched: the lookup cost without a string parse per
  // call (micro benchmarks).
  Napi::Value LookupMany(const Napi::CallbackInfo& info) {
    const Napi::Buffer<uint8_t> b = ArgBuffer(info, 0);
    uint32_t hits = 0;
    IpAddr a;
    a.family = 4;
    for (size_t off = 0; off + 4 <= b.Length(); off += 4) {
      std::memcpy(a.bytes, b.Data() + off, 4);
      if (table_ && table_->Lookup(a)) hits++;
    }
    return Napi::Number::New(info.Env(), hits);
  }

  Napi::Value IsPeer(const Napi::CallbackInfo& info) {
    const IpAddr a = Addr(info);
    return Napi::Boolean::New(info.Env(), table_ && table_->IsPeerAddress(a));
  }

  std::unique_ptr<RouteTable> table_;
};

}  // namespace

void InitRouteTable(Napi::Env env, Napi::Object exports) { exports.Set("RouteTable", RouteTableWrap::Define(env)); }

}  // namespace flannelts
