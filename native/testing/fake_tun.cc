// Test-only addon (build/Release/flannelts_testing.node; the daemon never loads it): what unit tests
// need to run the real engine without root that Node cannot make itself.
//
// FakeTun: a socketpair(AF_UNIX, SOCK_SEQPACKET) standing in for a TUN. The engine gets one end (as
// EngineOptions.tun.fd, non-blocking like a TUN fd); the test writes whole packets (virtio header
// first when the engine was told vnetHdr) into the other end and reads whole packets back. A
// SEQPACKET socket keeps message boundaries up to 64 KiB super-packets, which a pipe or a stream
// cannot. Where it differs from a TUN:
//   - a write into it can fail with EAGAIN when the reader lags and the socket buffer is full (a TUN
//     write never does); the engine counts that as tun_write_error. A thread here drains the test's
//     end into memory as fast as it can, and the buffers are as large as the system allows, so a test
//     that moves a few MiB at a time does not meet it.
//   - nothing completes NEEDS_CSUM checksums or checks any checksum: tests check csum_start and
//     csum_offset and complete the sum themselves.
//   - no ioctl works on it: the offloads are whatever the test says were negotiated.
// The engine dup()s the fd it gets; FakeTun closes its own ends in close().
//
// udpSocket(address, port): a bound, non-blocking UDP socket fd (for EngineOptions.sockets); the
// caller closes it (fs.closeSync).
// udpSend({from, to, port, payload, segmentSize}): one sendmsg from a fresh socket bound to `from`;
// with segmentSize, a UDP_SEGMENT send (the receiver sees a UDP_GRO batch, as from a GSO peer).
#include <napi.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/errors.h"

namespace {

using flannelts::ErrnoName;

Napi::Error SysErr(Napi::Env env, const std::string& what, int err) {
  Napi::Error e = Napi::Error::New(env, what + ": " + ErrnoName(err) + " (" + strerror(err) + ")");
  e.Set("code", Napi::String::New(env, ErrnoName(err)));
  return e;
}

// Larger than any message the engine writes (virtio header + 64 KiB packet).
constexpr size_t kMaxMessage = 128 * 1024;

void SetBuffers(int fd, int bytes) {
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bytes, sizeof bytes) < 0) setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes);
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof bytes) < 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
}

class FakeTun : public Napi::ObjectWrap<FakeTun> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "FakeTun",
                       {InstanceMethod<&FakeTun::Write>("write"), InstanceMethod<&FakeTun::Read>("read"),
                        InstanceMethod<&FakeTun::Close>("close"), InstanceAccessor<&FakeTun::EngineFd>("engineFd"),
                        InstanceAccessor<&FakeTun::Pending>("pending"), InstanceAccessor<&FakeTun::Truncated>("truncated")});
  }

  explicit FakeTun(const Napi::CallbackInfo& info) : Napi::ObjectWrap<FakeTun>(info) {
    Napi::Env env = info.Env();
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) throw SysErr(env, "socketpair(SOCK_SEQPACKET)", errno);
    engineFd_ = sv[0];
    testFd_ = sv[1];
    // The engine's end is non-blocking like a TUN fd. Writes from the test block (for at most 5 s)
    // while the engine has not read what came before: a test never loses its own input.
    fcntl(engineFd_, F_SETFL, fcntl(engineFd_, F_GETFL) | O_NONBLOCK);
    SetBuffers(engineFd_, 8 << 20);
    SetBuffers(testFd_, 8 << 20);
    timeval tv{5, 0};
    setsockopt(testFd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    reader_ = std::thread([this] { ReadLoop(); });
    env_ = env;
    napi_add_env_cleanup_hook(env, &FakeTun::Cleanup, this);
    hooked_ = true;
  }

  ~FakeTun() override { Shutdown(); }

 private:
  static void Cleanup(void* self) { static_cast<FakeTun*>(self)->Shutdown(); }

  void ReadLoop() {
    std::vector<uint8_t> buf(kMaxMessage);
    for (;;) {
      const ssize_t n = recv(testFd_, buf.data(), buf.size(), MSG_TRUNC);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;  // shut down (close) or the other end is gone
      std::lock_guard<std::mutex> lock(mu_);
      if (static_cast<size_t>(n) > buf.size()) truncated_++;
      queue_.emplace_back(buf.data(), buf.data() + std::min(static_cast<size_t>(n), buf.size()));
    }
  }

  void Shutdown() {
    if (hooked_) {
      napi_remove_env_cleanup_hook(env_, &FakeTun::Cleanup, this);
      hooked_ = false;
    }
    if (testFd_ >= 0) shutdown(testFd_, SHUT_RDWR);  // wakes the reader; the engine's end sees POLLHUP
    if (reader_.joinable()) reader_.join();
    for (int* fd : {&engineFd_, &testFd_}) {
      if (*fd >= 0) ::close(*fd);
      *fd = -1;
    }
  }

  Napi::Value Write(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsBuffer()) throw Napi::TypeError::New(env, "write(packet: Buffer)");
    if (testFd_ < 0) throw SysErr(env, "FakeTun.write", EBADF);
    const Napi::Buffer<uint8_t> b = info[0].As<Napi::Buffer<uint8_t>>();
    for (;;) {
      const ssize_t n = send(testFd_, b.Data(), b.Length(), MSG_NOSIGNAL);
      if (n >= 0) return env.Undefined();
      if (errno != EINTR) throw SysErr(env, "FakeTun.write of " + std::to_string(b.Length()) + " bytes", errno);
    }
  }

  // One whole message the engine wrote, or null when none is waiting.
  Napi::Value Read(const Napi::CallbackInfo& info) {
    std::vector<uint8_t> m;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (queue_.empty()) return info.Env().Null();
      m = std::move(queue_.front());
      queue_.pop_front();
    }
    return Napi::Buffer<uint8_t>::Copy(info.Env(), m.data(), m.size());
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Shutdown();
    return info.Env().Undefined();
  }

  Napi::Value EngineFd(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), engineFd_); }
  Napi::Value Pending(const Napi::CallbackInfo& info) {
    std::lock_guard<std::mutex> lock(mu_);
    return Napi::Number::New(info.Env(), static_cast<double>(queue_.size()));
  }
  Napi::Value Truncated(const Napi::CallbackInfo& info) {
    std::lock_guard<std::mutex> lock(mu_);
    return Napi::Number::New(info.Env(), static_cast<double>(truncated_));
  }

  int engineFd_ = -1, testFd_ = -1;
  std::thread reader_;
  std::mutex mu_;
  std::deque<std::vector<uint8_t>> queue_;
  uint64_t truncated_ = 0;
  napi_env env_ = nullptr;
  bool hooked_ = false;
};

// address text + port -> sockaddr; false when the text is neither family.
bool ToSockaddr(const std::string& ip, int port, sockaddr_storage* ss, socklen_t* len) {
  *ss = sockaddr_storage{};
  auto* sin = reinterpret_cast<sockaddr_in*>(ss);
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(ss);
  if (inet_pton(AF_INET, ip.c_str(), &sin->sin_addr) == 1) {
    sin->sin_family = AF_INET;
    sin->sin_port = htons(static_cast<uint16_t>(port));
    *len = sizeof *sin;
    return true;
  }
  if (inet_pton(AF_INET6, ip.c_str(), &sin6->sin6_addr) == 1) {
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(static_cast<uint16_t>(port));
    *len = sizeof *sin6;
    return true;
  }
  return false;
}

std::string StringArg(const Napi::Object& o, const char* key) {
  const Napi::Value v = o.Get(key);
  if (!v.IsString()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be an address string");
  return v.As<Napi::String>().Utf8Value();
}

int IntArg(const Napi::Object& o, const char* key, int def, int lo, int hi) {
  const Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return def;
  const int n = v.IsNumber() ? v.As<Napi::Number>().Int32Value() : lo - 1;
  if (n < lo || n > hi) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi));
  return n;
}

int BoundSocket(Napi::Env env, const std::string& ip, int port, bool nonBlocking) {
  sockaddr_storage ss;
  socklen_t len;
  if (!ToSockaddr(ip, port, &ss, &len)) throw Napi::TypeError::New(env, "not an IP address: " + ip);
  const int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | (nonBlocking ? SOCK_NONBLOCK : 0), 0);
  if (fd < 0) throw SysErr(env, "socket", errno);
  if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) < 0) {
    const int err = errno;
    ::close(fd);
    throw SysErr(env, "bind " + ip + ":" + std::to_string(port), err);
  }
  return fd;
}

// udpSocket(address, port) -> fd of a bound, non-blocking UDP socket.
Napi::Value UdpSocket(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsNumber()) throw Napi::TypeError::New(env, "udpSocket(address, port)");
  return Napi::Number::New(env, BoundSocket(env, info[0].As<Napi::String>().Utf8Value(), info[1].As<Napi::Number>().Int32Value(), true));
}

// udpSend({from, to, port, payload, segmentSize?}) -> bytes sent.
Napi::Value UdpSend(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "udpSend({from, to, port, payload, segmentSize?})");
  const Napi::Object o = info[0].As<Napi::Object>();
  const Napi::Value payload = o.Get("payload");
  if (!payload.IsBuffer()) throw Napi::TypeError::New(env, "payload must be a Buffer");
  const Napi::Buffer<uint8_t> b = payload.As<Napi::Buffer<uint8_t>>();
  const int port = IntArg(o, "port", 0, 1, 65535);
  const int seg = IntArg(o, "segmentSize", 0, 0, 65535);
  sockaddr_storage to;
  socklen_t toLen;
  if (!ToSockaddr(StringArg(o, "to"), port, &to, &toLen)) throw Napi::TypeError::New(env, "to must be an IP address");
  const int fd = BoundSocket(env, StringArg(o, "from"), 0, false);
  iovec iov{b.Data(), b.Length()};
  msghdr m{&to, toLen, &iov, 1, nullptr, 0, 0};
  alignas(cmsghdr) uint8_t ctrl[CMSG_SPACE(sizeof(uint16_t))] = {};
  if (seg > 0) {
    m.msg_control = ctrl;
    m.msg_controllen = sizeof ctrl;
    cmsghdr* c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_UDP;
    c->cmsg_type = UDP_SEGMENT;
    c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
    const uint16_t size = static_cast<uint16_t>(seg);
    std::memcpy(CMSG_DATA(c), &size, sizeof size);
  }
  const ssize_t n = sendmsg(fd, &m, 0);
  const int err = errno;
  ::close(fd);
  if (n < 0) throw SysErr(env, "udpSend", err);
  return Napi::Number::New(env, static_cast<double>(n));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("FakeTun", FakeTun::Define(env));
  exports.Set("udpSocket", Napi::Function::New(env, UdpSocket, "udpSocket"));
  exports.Set("udpSend", Napi::Function::New(env, UdpSend, "udpSend"));
  return exports;
}

}  // namespace

NODE_API_MODULE(flannelts_testing, Init)
