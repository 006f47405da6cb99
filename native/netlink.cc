// NetlinkSocket: a raw AF_NETLINK datagram socket exposed to JavaScript as bytes in, bytes out.
// The rtnetlink codec lives in TypeScript (pure, testable against recorded kernel bytes); this file
// only owns the file descriptor. Calls are synchronous on the main thread on purpose: this is the
// control plane and the kernel answers rtnetlink requests immediately.
#include "netlink.h"

#include <errno.h>
#include <linux/netlink.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sys/eventfd.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "base/errors.h"

namespace flannelts {
namespace {

Napi::Error NetlinkError(Napi::Env env, const std::string& op, int e) {
  const std::string name = ErrnoName(e);
  Napi::Error err = Napi::Error::New(env, "netlink " + op + ": " + name + " (" + strerror(e) + ")");
  err.Set("code", Napi::String::New(env, name));
  err.Set("errno", Napi::Number::New(env, e));
  err.Set("syscall", Napi::String::New(env, op));
  return err;
}

// One datagram (or a receive error) travelling from the subscription thread to the JS callback.
struct SubEvent {
  std::vector<uint8_t> data;
  int err = 0;
};

// Runs on the main thread for each queued event. env is null when the function is being torn down
// with events still queued; the event is then only freed.
void DeliverEvent(Napi::Env env, Napi::Function callback, std::nullptr_t*, SubEvent* ev) {
  std::unique_ptr<SubEvent> owned(ev);
  if (env == nullptr || callback.IsEmpty()) return;
  try {
    if (owned->err != 0) {
      callback.Call({NetlinkError(env, "recv (subscription)", owned->err).Value(), env.Null()});
    } else {
      callback.Call({env.Null(), Napi::Buffer<uint8_t>::Copy(env, owned->data.data(), owned->data.size())});
    }
  } catch (const Napi::Error& e) {
    // A throwing JS callback becomes an uncaught exception, as it would for any event emitter.
    e.ThrowAsJavaScriptException();
  }
}

using SubFn = Napi::TypedThreadSafeFunction<std::nullptr_t, SubEvent, DeliverEvent>;

class NetlinkSocket : public Napi::ObjectWrap<NetlinkSocket> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NetlinkSocket",
                       {
                           InstanceMethod("send", &NetlinkSocket::Send),
                           InstanceMethod("recv", &NetlinkSocket::Recv),
                           InstanceMethod("close", &NetlinkSocket::Close),
                           InstanceMethod("subscribe", &NetlinkSocket::Subscribe),
                           InstanceAccessor("pid", &NetlinkSocket::Pid, nullptr),
                           InstanceAccessor("closed", &NetlinkSocket::Closed, nullptr),
                       });
  }

  explicit NetlinkSocket(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NetlinkSocket>(info) {
    Napi::Env env = info.Env();
    int protocol = NETLINK_ROUTE;
    uint32_t groups = 0;
    if (info.Length() > 0 && !info[0].IsUndefined()) {
      if (!info[0].IsNumber()) throw Napi::TypeError::New(env, "NetlinkSocket: protocol must be a number");
      protocol = info[0].As<Napi::Number>().Int32Value();
    }
    if (info.Length() > 1 && !info[1].IsUndefined()) {
      if (!info[1].IsNumber()) throw Napi::TypeError::New(env, "NetlinkSocket: groups must be a number");
      groups = info[1].As<Napi::Number>().Uint32Value();
    }
    fd_ = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
    if (fd_ < 0) throw NetlinkError(env, "socket", errno);

    // Dumps of big tables and bursts of notifications arrive faster than JS drains them; a larger
    // receive buffer avoids ENOBUFS. SO_RCVBUFFORCE (root) passes net.core.rmem_max, else best effort.
    int rcvbuf = 1 << 20;
    if (setsockopt(fd_, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0) {
      setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    }
    // Extended ACKs give the kernel's reason string; harmless where unsupported, so errors are ignored.
    int one = 1;
    setsockopt(fd_, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));

    sockaddr_nl sa{};
    sa.nl_family = AF_NETLINK;
    sa.nl_groups = groups;
    if (bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) < 0) {
      int e = errno;
      ::close(fd_);
      fd_ = -1;
      throw NetlinkError(env, "bind", e);
    }
    socklen_t len = sizeof(sa);
    if (getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len) < 0) {
      int e = errno;
      ::close(fd_);
      fd_ = -1;
      throw NetlinkError(env, "getsockname", e);
    }
    pid_ = sa.nl_pid;
    buf_.resize(64 * 1024);
  }

  ~NetlinkSocket() override {
    // Only reachable unsubscribed or at environment teardown; the reference is going away anyway.
    StopSubscription(false);
    if (fd_ >= 0) ::close(fd_);
  }

 private:
  void EnsureOpen(Napi::Env env, const char* op) {
    if (fd_ < 0) throw NetlinkError(env, op, EBADF);
  }

  Napi::Value Send(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    EnsureOpen(env, "send");
    if (info.Length() < 1 || !info[0].IsBuffer()) throw Napi::TypeError::New(env, "send: expected a Buffer");
    auto buf = info[0].As<Napi::Buffer<uint8_t>>();
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;  // nl_pid 0 addresses the kernel
    for (;;) {
      ssize_t n = sendto(fd_, buf.Data(), buf.Length(), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof(kernel));
      if (n >= 0) {
        if (static_cast<size_t>(n) != buf.Length()) throw NetlinkError(env, "send (short write)", EMSGSIZE);
        return env.Undefined();
      }
      if (errno == EINTR) continue;
      throw NetlinkError(env, "send", errno);
    }
  }

  // Returns one datagram, or null when nothing arrived within timeoutMs (negative waits forever).
  Napi::Value Recv(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    EnsureOpen(env, "recv");
    // The subscription thread owns reads; a second reader would steal its datagrams.
    if (thread_.joinable()) throw NetlinkError(env, "recv (socket is subscribed)", EBUSY);
    int timeout = -1;
    if (info.Length() > 0 && info[0].IsNumber()) timeout = info[0].As<Napi::Number>().Int32Value();

    pollfd p{fd_, POLLIN, 0};
    for (;;) {
      int r = poll(&p, 1, timeout);
      if (r > 0) break;
      if (r == 0) return env.Null();
      if (errno == EINTR) continue;
      throw NetlinkError(env, "poll", errno);
    }
    for (;;) {
      // MSG_PEEK|MSG_TRUNC reports the real datagram size, so a reply bigger than our buffer grows it
      // instead of being silently cut (a cut dump would decode as malformed).
      ssize_t need = recv(fd_, buf_.data(), buf_.size(), MSG_PEEK | MSG_TRUNC);
      if (need < 0) {
        if (errno == EINTR) continue;
        throw NetlinkError(env, "recv", errno);
      }
      if (static_cast<size_t>(need) > buf_.size()) buf_.resize(static_cast<size_t>(need));
      sockaddr_nl from{};
      socklen_t fromlen = sizeof(from);
      ssize_t n = recvfrom(fd_, buf_.data(), buf_.size(), 0, reinterpret_cast<sockaddr*>(&from), &fromlen);
      if (n < 0) {
        if (errno == EINTR) continue;
        throw NetlinkError(env, "recv", errno);
      }
      return Napi::Buffer<uint8_t>::Copy(env, buf_.data(), static_cast<size_t>(n));
    }
  }

  // subscribe(cb(err, buf)): a native thread reads every datagram (multicast notifications such as
  // RTMGRP_LINK) and hands it to cb on the main thread. Stops on close(). While subscribed the socket
  // object is kept alive, so an unreferenced watcher does not silently stop at garbage collection.
  Napi::Value Subscribe(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    EnsureOpen(env, "subscribe");
    if (info.Length() < 1 || !info[0].IsFunction()) throw Napi::TypeError::New(env, "subscribe: expected a callback");
    if (thread_.joinable()) throw NetlinkError(env, "subscribe (already subscribed)", EBUSY);
    stopfd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (stopfd_ < 0) throw NetlinkError(env, "eventfd", errno);
    // Queue size 0 = unbounded, so the reader never blocks on JS and stop() can always join it.
    fn_ = SubFn::New(env, info[0].As<Napi::Function>(), "NetlinkSocket.subscribe", 0, 1);
    Ref();
    thread_ = std::thread([this] { ReadLoop(); });
    return env.Undefined();
  }

  void ReadLoop() {
    std::vector<uint8_t> buf(64 * 1024);
    pollfd fds[2] = {{fd_, POLLIN, 0}, {stopfd_, POLLIN, 0}};
    for (;;) {
      int r = poll(fds, 2, -1);
      if (r < 0) {
        if (errno == EINTR) continue;
        Push(nullptr, 0, errno);
        break;
      }
      if (fds[1].revents) break;
      if (!(fds[0].revents & (POLLIN | POLLERR))) continue;
      ssize_t need = recv(fd_, buf.data(), buf.size(), MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT);
      if (need > 0 && static_cast<size_t>(need) > buf.size()) buf.resize(static_cast<size_t>(need));
      ssize_t n = recv(fd_, buf.data(), buf.size(), MSG_DONTWAIT);
      if (n < 0) {
        int e = errno;
        if (e == EINTR || e == EAGAIN) continue;
        // ENOBUFS: the kernel dropped notifications; report it (callers re-list) and keep reading.
        Push(nullptr, 0, e);
        if (e == ENOBUFS) continue;
        break;
      }
      Push(buf.data(), static_cast<size_t>(n), 0);
    }
    fn_.Release();
  }

  void Push(const uint8_t* data, size_t len, int err) {
    auto* ev = new SubEvent();
    if (data) ev->data.assign(data, data + len);
    ev->err = err;
    if (fn_.NonBlockingCall(ev) != napi_ok) delete ev;
  }

  void StopSubscription(bool unref = true) {
    if (!thread_.joinable()) return;
    uint64_t one = 1;
    if (write(stopfd_, &one, sizeof(one)) < 0) {
      // The eventfd counter cannot overflow with one write; nothing else can fail here.
    }
    thread_.join();
    ::close(stopfd_);
    stopfd_ = -1;
    if (unref) Unref();
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    StopSubscription();
    if (fd_ >= 0) {
      ::close(fd_);
      fd_ = -1;
    }
    return info.Env().Undefined();
  }

  Napi::Value Pid(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), pid_); }
  Napi::Value Closed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), fd_ < 0); }

  int fd_ = -1;
  int stopfd_ = -1;
  uint32_t pid_ = 0;
  std::thread thread_;
  SubFn fn_;
  std::vector<uint8_t> buf_;
};

}  // namespace

void InitNetlink(Napi::Env env, Napi::Object exports) {
  exports.Set("NetlinkSocket", NetlinkSocket::Define(env));
}

}  // namespace flannelts
