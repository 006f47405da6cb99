#pragma once
// What every binding file shares: turning C++ errors into JavaScript ones, and reading arguments and
// option fields with errors that name the field and what it must be.
#include <napi.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "base/errors.h"
#include "base/mac.h"
#include "io/netlink_socket.h"

namespace flannelts {

struct RouteSpec;

// Runs fn, turning C++ errors into JavaScript ones: SysError becomes an Error with .code = the errno
// name (like Node's own system errors; a NetlinkError also .errno and .syscall), invalid_argument a
// TypeError. (Built without RTTI, so no dynamic_cast: one catch clause per type.)
template <typename Fn>
void Guard(Napi::Env env, Fn&& fn) {
  try {
    fn();
  } catch (const Napi::Error&) {
    throw;
  } catch (const NetlinkError& e) {
    Napi::Error err = Napi::Error::New(env, e.what());
    err.Set("code", Napi::String::New(env, ErrnoName(e.err())));
    err.Set("errno", Napi::Number::New(env, e.err()));
    err.Set("syscall", Napi::String::New(env, e.op()));
    throw err;
  } catch (const SysError& e) {
    Napi::Error err = Napi::Error::New(env, e.what());
    err.Set("code", Napi::String::New(env, ErrnoName(e.err())));
    throw err;
  } catch (const std::invalid_argument& e) {
    throw Napi::TypeError::New(env, e.what());
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, e.what());
  }
}

// Argument i as a Buffer, a MAC string, a VNI, an IPv4/IPv6 address string; TypeError naming it otherwise.
Napi::Buffer<uint8_t> ArgBuffer(const Napi::CallbackInfo& info, size_t i);
Mac ArgMac(const Napi::CallbackInfo& info, size_t i);
uint32_t ArgVni(const Napi::CallbackInfo& info, size_t i);

// Option fields of an object described as `what` (e.g. "EngineOptions"): absent or null -> def.
std::string OptString(const Napi::Object& o, const char* what, const char* key, const std::string& def);
// An integer in [lo, hi]; nothing when absent. loNote says what lo means (" (off)").
std::optional<int> OptIntIn(const Napi::Object& o, const char* what, const char* key, int lo, int hi, const char* loNote = "");
uint16_t ToPort(const Napi::Value& v, const std::string& what, bool allowZero);
int ToFd(const Napi::Value& v, const std::string& what);

// A peer table as setPeers/RouteTable.set take it: [{subnet, publicIP, port, mac?}].
std::vector<RouteSpec> ToSpecs(const Napi::Value& v);

// An object of number fields, e.g. {hits: 7, misses: 2}; counters are exact in a double up to 2^53.
Napi::Object NumberFields(Napi::Env env, std::initializer_list<std::pair<const char*, double>> fields);

}  // namespace flannelts
