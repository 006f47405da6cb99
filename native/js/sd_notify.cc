// sdNotify(address, state): one datagram to systemd's notification socket, as sd_notify(3) sends it.
// Node has no AF_UNIX datagram sockets, and a `systemd-notify` child is refused under
// NotifyAccess=main (the datagram must come from the main PID), so the daemon sends it from here.
// No libsystemd: the protocol is one sendto() of "KEY=VALUE\n..." text.
//
// address is $NOTIFY_SOCKET: a path ("/run/systemd/notify") or an abstract name ("@..." -> leading
// NUL, length without a trailing NUL, as systemd reads it). Throws an Error naming the errno
// (ENOENT, ECONNREFUSED, EAGAIN) and the address; never blocks (MSG_DONTWAIT).
#include <napi.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace flannelts {
namespace {

std::string Errno(int err) {
  const char* name = strerrorname_np(err);
  return std::string(name ? name : "errno " + std::to_string(err)) + " (" + strerror(err) + ")";
}

Napi::Value SdNotify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsString())
    throw Napi::TypeError::New(env, "sdNotify(address, state): two strings expected");
  const std::string address = info[0].As<Napi::String>().Utf8Value();
  const std::string state = info[1].As<Napi::String>().Utf8Value();

  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  const bool abstract = !address.empty() && address[0] == '@';
  if (address.empty() || (address[0] != '/' && !abstract))
    throw Napi::Error::New(env, "NOTIFY_SOCKET=" + address + ": not a socket path (/...) or abstract name (@...)");
  if (address.size() > sizeof sa.sun_path - (abstract ? 0 : 1))
    throw Napi::Error::New(env, "NOTIFY_SOCKET=" + address + ": longer than a unix socket address (" + std::to_string(sizeof sa.sun_path) + " bytes)");
  memcpy(sa.sun_path, address.data(), address.size());
  if (abstract) sa.sun_path[0] = '\0';
  // An abstract address is exactly its bytes (no terminating NUL); a path may carry one.
  const socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address.size() + (abstract ? 0 : 1));

  const int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw Napi::Error::New(env, "sdNotify: socket(AF_UNIX, SOCK_DGRAM): " + Errno(errno));
  const ssize_t n = sendto(fd, state.data(), state.size(), MSG_NOSIGNAL | MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&sa), len);
  const int err = errno;
  close(fd);
  if (n < 0) throw Napi::Error::New(env, "sdNotify: send to NOTIFY_SOCKET=" + address + ": " + Errno(err));
  if (static_cast<size_t>(n) != state.size()) throw Napi::Error::New(env, "sdNotify: short send to NOTIFY_SOCKET=" + address);
  return env.Undefined();
}

}  // namespace

void InitSdNotify(Napi::Env env, Napi::Object exports) {
  exports.Set("sdNotify", Napi::Function::New(env, SdNotify, "sdNotify"));
}

}  // namespace flannelts
