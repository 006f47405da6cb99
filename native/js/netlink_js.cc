// The NetlinkSocket class for JavaScript (src/netlink/socket.ts): bytes in, bytes out, over the raw
// socket of io/netlink_socket.h; subscribe(cb) hands each notification to cb on the main thread.
// Errors carry .code (errno name), .errno and .syscall like Node's own.
#include <napi.h>

#include <linux/netlink.h>

#include <cerrno>
#include <memory>
#include <optional>
#include <vector>

#include "io/netlink_socket.h"
#include "js/args.h"

namespace flannelts {

namespace {

// One datagram (or a receive error) travelling from the subscription thread to the JS callback.
struct SubEvent {
  std::vector<uint8_t> data;
  int err = 0;
};

Napi::Value ErrorValue(Napi::Env env, const std::string& op, int err) {
  Napi::Value v = env.Undefined();
  try {
    Guard(env, [&] { throw NetlinkError(op, err); });
  } catch (const Napi::Error& e) {
    v = e.Value();
  }
  return v;
}

// Runs on the main thread for each queued event. env is null when the function is being torn down
// with events still queued; the event is then only freed.
void DeliverEvent(Napi::Env env, Napi::Function callback, std::nullptr_t*, SubEvent* ev) {
  std::unique_ptr<SubEvent> owned(ev);
  if (env == nullptr || callback.IsEmpty()) return;
  try {
    if (owned->err != 0) {
      callback.Call({ErrorValue(env, "recv (subscription)", owned->err), env.Null()});
    } else {
      callback.Call({env.Null(), Napi::Buffer<uint8_t>::Copy(env, owned->data.data(), owned->data.size())});
    }
  } catch (const Napi::Error& e) {
    // A throwing JS callback becomes an uncaught exception, as it would for any event emitter.
    e.ThrowAsJavaScriptException();
  }
}

using SubFn = Napi::TypedThreadSafeFunction<std::nullptr_t, SubEvent, DeliverEvent>;

class NetlinkSocketWrap : public Napi::ObjectWrap<NetlinkSocketWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NetlinkSocket",
                       {
                           InstanceMethod("send", &NetlinkSocketWrap::Send),
                           InstanceMethod("recv", &NetlinkSocketWrap::Recv),
                           InstanceMethod("close", &NetlinkSocketWrap::Close),
                           InstanceMethod("subscribe", &NetlinkSocketWrap::Subscribe),
                           InstanceAccessor("pid", &NetlinkSocketWrap::Pid, nullptr),
                           InstanceAccessor("closed", &NetlinkSocketWrap::Closed, nullptr),
                       });
  }

  explicit NetlinkSocketWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NetlinkSocketWrap>(info) {
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
    Guard(env, [&] { sock_ = std::make_unique<NetlinkSocket>(protocol, groups); });
  }

  // Only reachable unsubscribed or at environment teardown; the reference is going away anyway.
  ~NetlinkSocketWrap() override { StopSubscription(false); }

 private:
  void EnsureOpen(Napi::Env env, const char* op) {
    if (sock_->closed()) Guard(env, [&] { throw NetlinkError(op, EBADF); });
  }

  Napi::Value Send(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    EnsureOpen(env, "send");
    if (info.Length() < 1 || !info[0].IsBuffer()) throw Napi::TypeError::New(env, "send: expected a Buffer");
    const auto buf = info[0].As<Napi::Buffer<uint8_t>>();
    Guard(env, [&] { sock_->Send(buf.Data(), buf.Length()); });
    return env.Undefined();
  }

  // Returns one datagram, or null when nothing arrived within timeoutMs (negative waits forever).
  Napi::Value Recv(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int timeout = -1;
    if (info.Length() > 0 && info[0].IsNumber()) timeout = info[0].As<Napi::Number>().Int32Value();
    std::optional<std::vector<uint8_t>> got;
    Guard(env, [&] { got = sock_->Recv(timeout); });
    if (!got) return env.Null();
    return Napi::Buffer<uint8_t>::Copy(env, got->data(), got->size());
  }

  // subscribe(cb(err, buf)): a native thread reads every datagram (multicast notifications such as
  // RTMGRP_LINK) and hands it to cb on the main thread. Stops on close(). While subscribed the socket
  // object is kept alive, so an unreferenced watcher does not silently stop at garbage collection.
  Napi::Value Subscribe(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    EnsureOpen(env, "subscribe");
    if (info.Length() < 1 || !info[0].IsFunction()) throw Napi::TypeError::New(env, "subscribe: expected a callback");
    if (sock_->subscribed()) Guard(env, [&] { throw NetlinkError("subscribe (already subscribed)", EBUSY); });
    // Queue size 0 = unbounded, so the reader never blocks on JS and close() can always join it.
    fn_ = SubFn::New(env, info[0].As<Napi::Function>(), "NetlinkSocket.subscribe", 0, 1);
    Guard(env, [&] {
      try {
        sock_->Subscribe(
            [this](std::vector<uint8_t>&& data, int err) {
              auto* ev = new SubEvent{std::move(data), err};
              if (fn_.NonBlockingCall(ev) != napi_ok) delete ev;
            },
            [this] { fn_.Release(); });
      } catch (...) {
        fn_.Release();
        throw;
      }
    });
    Ref();
    return env.Undefined();
  }

  void StopSubscription(bool unref = true) {
    if (!sock_ || !sock_->subscribed()) return;
    sock_->Unsubscribe();
    if (unref) Unref();
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    StopSubscription();
    sock_->Close();
    return info.Env().Undefined();
  }

  Napi::Value Pid(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), sock_->pid()); }
  Napi::Value Closed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), sock_->closed()); }

  std::unique_ptr<NetlinkSocket> sock_;
  SubFn fn_;
};

}  // namespace

void InitNetlink(Napi::Env env, Napi::Object exports) { exports.Set("NetlinkSocket", NetlinkSocketWrap::Define(env)); }

}  // namespace flannelts
