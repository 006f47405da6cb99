#pragma once
// Shared argument helpers of the WireGuard bindings (wireguard_crypto_js.cc, wireguard_device_js.cc).
#include <napi.h>

#include <cstdint>

namespace flannelts {
namespace wgjs {

Napi::Buffer<uint8_t> Arg(const Napi::CallbackInfo& info, size_t i, const char* name, size_t exact);
Napi::Buffer<uint8_t> Field(const Napi::Object& o, const char* name, size_t exact, bool optional);
uint32_t FieldU32(const Napi::Object& o, const char* name);
Napi::Buffer<uint8_t> Copy(Napi::Env env, const uint8_t* p, size_t n);

void InitWireGuardCrypto(Napi::Env env, Napi::Object wg);
void InitWireGuardDevice(Napi::Env env, Napi::Object wg);

}  // namespace wgjs

// The one call native/addon.cc makes: exports.wireguard = {primitives, handshake, Device}.
void InitWireGuard(Napi::Env env, Napi::Object exports);

}  // namespace flannelts
