// JavaScript bindings of the pure VXLAN/ARP codec (encap/vxlan_codec.h), for unit tests and fuzzing without root.
#include <napi.h>

#include <cstring>
#include <string>

#include "base/ipaddr.h"
#include "encap/vxlan_codec.h"
#include "js/args.h"

namespace flannelts {

namespace {

// vxlanEncap(vni, dstMac, srcMac, innerIpPacket) -> the UDP payload the engine sends.
Napi::Value Encap(const Napi::CallbackInfo& info) {
  const uint32_t vni = ArgVni(info, 0);
  const Mac dst = ArgMac(info, 1), src = ArgMac(info, 2);
  const Napi::Buffer<uint8_t> inner = ArgBuffer(info, 3);
  const uint16_t type = inner.Length() && (inner.Data()[0] >> 4) == 6 ? kEtherIPv6 : kEtherIPv4;
  Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::New(info.Env(), kVxlanPrefix + inner.Length());
  WriteVxlanPrefix(out.Data(), vni, dst, src, type);
  if (inner.Length()) std::memcpy(out.Data() + kVxlanPrefix, inner.Data(), inner.Length());
  return out;
}

// vxlanParse(datagram, vni, ourMac) -> {status, vni, src, dst, etherType, payloadOffset}.
Napi::Value Parse(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Napi::Buffer<uint8_t> b = ArgBuffer(info, 0);
  const VxlanFrame f = ParseVxlan(b.Data(), b.Length(), ArgVni(info, 1), ArgMac(info, 2));
  Napi::Object o = Napi::Object::New(env);
  o.Set("status", VxlanStatusName(f.status));
  if (f.status != VxlanStatus::kTruncated) {
    o.Set("vni", Napi::Number::New(env, f.vni));
    o.Set("src", FormatMac(f.src));
    o.Set("dst", FormatMac(f.dst));
    o.Set("etherType", Napi::Number::New(env, f.etherType));
    o.Set("payloadOffset", Napi::Number::New(env, static_cast<double>(f.payload)));
  }
  return o;
}

// arpReply(arpPayload, ourMac, ourIPv4) -> 28-byte reply, or null when nothing is to be answered.
Napi::Value ArpReply(const Napi::CallbackInfo& info) {
  const Napi::Buffer<uint8_t> b = ArgBuffer(info, 0);
  const Mac mac = ArgMac(info, 1);
  IpAddr ip;
  if (info.Length() < 3 || !info[2].IsString() || !ParseIp(info[2].As<Napi::String>().Utf8Value(), &ip) || ip.family != 4)
    throw Napi::TypeError::New(info.Env(), "argument 2 must be an IPv4 address string");
  uint8_t out[kArpLen];
  const size_t n = BuildArpReply(b.Data(), b.Length(), mac, ip.bytes, out);
  if (n == 0) return info.Env().Null();
  return Napi::Buffer<uint8_t>::Copy(info.Env(), out, n);
}

Napi::Value Hash(const Napi::CallbackInfo& info) {
  const Napi::Buffer<uint8_t> b = ArgBuffer(info, 0);
  return Napi::Number::New(info.Env(), FlowHash(b.Data(), b.Length()));
}

}  // namespace

void InitVxlan(Napi::Env env, Napi::Object exports) {
  exports.Set("vxlanEncap", Napi::Function::New(env, Encap, "vxlanEncap"));
  exports.Set("vxlanParse", Napi::Function::New(env, Parse, "vxlanParse"));
  exports.Set("arpReply", Napi::Function::New(env, ArpReply, "arpReply"));
  exports.Set("flowHash", Napi::Function::New(env, Hash, "flowHash"));
}

}  // namespace flannelts
