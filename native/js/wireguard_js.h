#pragma once
// Shared helpers of the WireGuard bindings (wireguard_crypto_js.cc, wireguard_device_js.cc,
// wireguard_interface_js.cc) and the interface unwrapping the engine options need.
#include <napi.h>

#include <cstdint>
#include <memory>

#include "wireguard/device.h"

namespace flannelts {

class WgInterface;

namespace wgjs {

Napi::Buffer<uint8_t> Arg(const Napi::CallbackInfo& info, size_t i, const char* name, size_t exact);
Napi::Buffer<uint8_t> Field(const Napi::Object& o, const char* name, size_t exact, bool optional);
uint32_t FieldU32(const Napi::Object& o, const char* name);
Napi::Buffer<uint8_t> Copy(Napi::Env env, const uint8_t* p, size_t n);

// {address, port} <-> wg::Endpoint (undefined/null: none); {mono, wall} in ms -> wg::Now.
Napi::Object EndpointJs(Napi::Env env, const wg::Endpoint& e);
wg::Endpoint ToEndpoint(Napi::Env env, Napi::Value v);
wg::Now ToNow(Napi::Env env, Napi::Value v);
// {publicKey, psk?, endpoint?, persistentKeepalive?}
wg::PeerConfig ToPeerConfig(const Napi::Object& o);
Napi::Object SealJobJs(Napi::Env env, const wg::CookieSealJob& j);
Napi::Object OpenJobJs(Napi::Env env, const wg::CookieOpenJob& j);
wg::CookieSealJob ToSealJob(const Napi::Object& j);
Napi::Object PeerStatsJs(Napi::Env env, const wg::PeerStats& s);
// {data: n, keepalive: n, ...}: every wg::Reason by name.
Napi::Object ReasonCountersJs(Napi::Env env, const wg::Device& d);

void InitWireGuardCrypto(Napi::Env env, Napi::Object wg);
void InitWireGuardDevice(Napi::Env env, Napi::Object wg);
void InitWireGuardInterface(Napi::Env env, Napi::Object wg);

}  // namespace wgjs

// EngineOptions.wireguard: the interface behind a JavaScript WireGuardInterface; TypeError otherwise.
std::shared_ptr<WgInterface> UnwrapWgInterface(const Napi::Value& v);

// The one call native/addon.cc makes: exports.wireguard = {primitives, handshake, Device, Interface}.
void InitWireGuard(Napi::Env env, Napi::Object exports);

}  // namespace flannelts
