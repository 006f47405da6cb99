// JavaScript binding of the ICMP echo prober (native/probe/): the EchoProber class.
//   new EchoProber({netns, target, family?, count, intervalMs, timeoutMs, size?, cpu?,
//                   stopAfterReplies?, stopAfterFailures?, stopAfterErrors?})  validates every field (one-line errors naming it) and opens
//                   the namespace file;
//   start() -> Promise of the raw result, resolved when the prober thread has ended and been joined;
//   abort() ends the run early (the promise then resolves with what was measured).
// Static encodeRequest/matchEcho expose the pure echo codec to the unit tests.
// The promise settles through a thread-safe function that is never called: the thread releases it
// when done, and its finalizer (on the JS thread) joins the thread and settles the promise. While a
// run is on, the pending function keeps the event loop alive, like a timer would.
#include <fcntl.h>
#include <linux/nsfs.h>
#include <napi.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cmath>
#include <memory>
#include <string>
#include <thread>

#include "base/ipaddr.h"
#include "probe/echo.h"
#include "probe/prober.h"
#include "base/errors.h"

namespace flannelts {

namespace {

constexpr double kMaxMs = 3600 * 1000;  // one hour: no interval or timeout of a check is longer

Napi::Error Bad(Napi::Env env, const std::string& msg, bool range = true) {
  if (range) return Napi::RangeError::New(env, "probe: " + msg);
  return Napi::TypeError::New(env, "probe: " + msg);
}

std::string Shown(const Napi::Value& v) { return v.IsString() ? "'" + v.As<Napi::String>().Utf8Value() + "'" : v.ToString().Utf8Value(); }

// A number option within [lo, hi] (an integer when asked); def when absent and not required.
double Num(const Napi::Object& o, const char* key, double lo, double hi, bool integer, bool required, double def) {
  const Napi::Value v = o.Get(key);
  const std::string range = std::string(integer ? "an integer" : "a number") + " from " + Napi::Number::New(o.Env(), lo).ToString().Utf8Value() +
                            " to " + Napi::Number::New(o.Env(), hi).ToString().Utf8Value();
  if (v.IsUndefined() || v.IsNull()) {
    if (required) throw Bad(o.Env(), std::string(key) + " is required: " + range, false);
    return def;
  }
  if (!v.IsNumber()) throw Bad(o.Env(), std::string(key) + " must be " + range + " (got " + Shown(v) + ")", false);
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= lo && d <= hi) || (integer && d != std::floor(d))) throw Bad(o.Env(), std::string(key) + " must be " + range + " (got " + Shown(v) + ")");
  return d;
}

std::string Str(const Napi::Object& o, const char* key, const char* what) {
  const Napi::Value v = o.Get(key);
  if (!v.IsString() || v.As<Napi::String>().Utf8Value().empty())
    throw Bad(o.Env(), std::string(key) + " must be " + what + (v.IsUndefined() ? "" : " (got " + Shown(v) + ")"), false);
  return v.As<Napi::String>().Utf8Value();
}

// A name as `ip netns` keeps it (/var/run/netns/NAME) or a path such as /proc/PID/ns/net.
int OpenNetns(Napi::Env env, const std::string& netns) {
  const std::string path = netns.find('/') == std::string::npos ? "/var/run/netns/" + netns : netns;
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int e = errno;
    throw Napi::Error::New(env, "probe: " + std::string(SysError("netns " + path, e, e == ENOENT ? "no such network namespace; see ip netns list" : "").what()));
  }
  const int type = ioctl(fd, NS_GET_NSTYPE);
  if (type != CLONE_NEWNET) {
    close(fd);
    throw Napi::Error::New(env, "probe: netns " + path + " is not a network namespace file");
  }
  return fd;
}

IpAddr Target(const Napi::Object& o) {
  const std::string s = Str(o, "target", "an IPv4 or IPv6 address");
  IpAddr a;
  if (!ParseIp(s, &a)) throw Bad(o.Env(), "target '" + s + "' is not an IPv4 or IPv6 address", false);
  static const uint8_t zero[16] = {};
  const bool multi = a.family == 4 ? (a.bytes[0] >= 224) : a.bytes[0] == 0xff;
  if (multi || std::memcmp(a.bytes, zero, a.family == 4 ? 4 : 16) == 0)
    throw Bad(o.Env(), "target " + s + " must be one host's unicast address");
  const Napi::Value fam = o.Get("family");
  if (!fam.IsUndefined()) {
    const double f = Num(o, "family", 4, 6, true, false, 0);
    if (f != 4 && f != 6) throw Bad(o.Env(), "family must be 4 or 6 (got " + Shown(fam) + ")");
    if (f != a.family) throw Bad(o.Env(), "family " + Shown(fam) + " does not match target " + s + " (an IPv" + std::to_string(a.family) + " address)");
  }
  return a;
}

ProbeOptions ParseOptions(const Napi::Value& v) {
  Napi::Env env = v.Env();
  if (!v.IsObject()) throw Bad(env, "options must be an object {netns, target, count, intervalMs, timeoutMs}", false);
  const Napi::Object o = v.As<Napi::Object>();
  ProbeOptions p;
  p.target = Target(o);
  p.count = static_cast<uint32_t>(Num(o, "count", 1, kMaxEchoes, true, true, 0));
  p.intervalNs = static_cast<int64_t>(Num(o, "intervalMs", 0, kMaxMs, false, true, 0) * 1e6);
  p.timeoutNs = static_cast<int64_t>(Num(o, "timeoutMs", 1, kMaxMs, false, true, 0) * 1e6);
  p.dataLen = static_cast<uint32_t>(Num(o, "size", kCookieLen, kMaxEchoData, true, false, kDefaultEchoData));
  const int cpus = static_cast<int>(std::thread::hardware_concurrency());
  p.cpu = static_cast<int>(Num(o, "cpu", 0, (cpus > 0 ? cpus : CPU_SETSIZE) - 1, true, false, -1));
  p.stopAfterReplies = static_cast<uint32_t>(Num(o, "stopAfterReplies", 0, kMaxEchoes, true, false, 0));
  p.stopAfterFailures = static_cast<uint32_t>(Num(o, "stopAfterFailures", 0, kMaxEchoes, true, false, 0));
  p.stopAfterErrors = static_cast<uint32_t>(Num(o, "stopAfterErrors", 0, kMaxEchoes, true, false, 0));
  // Last: the only step that acquires something (the namespace descriptor, owned by the run from here).
  p.netns = Str(o, "netns", "a network namespace name or path (/var/run/netns/NAME, /proc/PID/ns/net)");
  p.netnsFd = OpenNetns(env, p.netns);
  return p;
}

const char* EndName(EndReason e) {
  switch (e) {
    case EndReason::kDone: return "done";
    case EndReason::kReplies: return "replies";
    case EndReason::kFailures: return "failures";
    case EndReason::kErrors: return "errors";
    case EndReason::kAborted: return "aborted";
  }
  return "done";
}

const char* KindName(FailureKind k) {
  switch (k) {
    case FailureKind::kTimeout: return "timeout";
    case FailureKind::kIcmpError: return "icmp";
    case FailureKind::kSendError: return "send";
    case FailureKind::kStopped: return "stopped";
  }
  return "timeout";
}

Napi::Object ResultToJs(Napi::Env env, const ProbeResult& r) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("sent", r.sent);
  out.Set("startedAtMs", static_cast<double>(r.startRealNs) / 1e6);
  out.Set("end", EndName(r.end));
  out.Set("duplicates", r.duplicates);
  out.Set("late", r.late);
  Napi::Array replies = Napi::Array::New(env, r.replies.size());
  for (uint32_t i = 0; i < r.replies.size(); i++) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("seq", r.replies[i].seq);
    o.Set("rttNs", static_cast<double>(r.replies[i].rttNs));
    o.Set("sentAtNs", static_cast<double>(r.replies[i].sentAtNs));
    replies.Set(i, o);
  }
  out.Set("replies", replies);
  Napi::Array failures = Napi::Array::New(env, r.failures.size());
  for (uint32_t i = 0; i < r.failures.size(); i++) {
    const EchoFailure& f = r.failures[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("seq", f.seq);
    o.Set("kind", KindName(f.kind));
    o.Set("sentAtNs", static_cast<double>(f.sentAtNs));
    if (f.kind == FailureKind::kIcmpError) {
      o.Set("type", f.type);
      o.Set("code", f.code);
      o.Set("from", FormatIp(f.from));
      if (f.mtu) o.Set("mtu", f.mtu);
    }
    if (f.kind == FailureKind::kSendError) {
      o.Set("errno", ErrnoName(f.err));
      o.Set("message", strerror(f.err));
    }
    failures.Set(i, o);
  }
  out.Set("failures", failures);
  return out;
}

struct RunContext {
  std::shared_ptr<EchoProber> probe;
  Napi::Promise::Deferred deferred;
};

// On the JS thread, after the prober thread released the function (or at environment teardown,
// when the run may still be on: hence the abort before the join).
void Settle(Napi::Env env, void*, RunContext* raw) {
  std::unique_ptr<RunContext> ctx(raw);
  ctx->probe->Abort();
  ctx->probe->Join();
  const ProbeResult& r = ctx->probe->result();
  try {
    if (r.error.empty()) ctx->deferred.Resolve(ResultToJs(env, r));
    else ctx->deferred.Reject(Napi::Error::New(env, "probe: " + r.error).Value());
  } catch (const Napi::Error&) {
    // The environment is being torn down: nobody is left to read the result.
  }
}

using Done = Napi::TypedThreadSafeFunction<RunContext>;

IpAddr AddrArg(const Napi::CallbackInfo& info, size_t i) {
  IpAddr a;
  if (!info[i].IsString() || !ParseIp(info[i].As<Napi::String>().Utf8Value(), &a)) throw Napi::TypeError::New(info.Env(), "expected an IP address string");
  return a;
}

EchoKey KeyArgs(const Napi::CallbackInfo& info) {
  // (target, id, cookie, ...): cookie is a Buffer of kCookieLen bytes.
  if (!info[1].IsNumber() || !info[2].IsBuffer() || info[2].As<Napi::Buffer<uint8_t>>().Length() != kCookieLen)
    throw Napi::TypeError::New(info.Env(), "expected (target, id, cookie: 8-byte Buffer, ...)");
  EchoKey k;
  k.target = AddrArg(info, 0);
  k.id = static_cast<uint16_t>(info[1].As<Napi::Number>().Uint32Value());
  std::memcpy(k.cookie, info[2].As<Napi::Buffer<uint8_t>>().Data(), kCookieLen);
  return k;
}

class ProberBinding : public Napi::ObjectWrap<ProberBinding> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "EchoProber",
                       {InstanceMethod("start", &ProberBinding::Start), InstanceMethod("abort", &ProberBinding::Abort),
                        StaticMethod("encodeRequest", &ProberBinding::EncodeRequest), StaticMethod("matchEcho", &ProberBinding::Match)});
  }

  explicit ProberBinding(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ProberBinding>(info) {
    ProbeOptions o = ParseOptions(info[0]);
    try {
      probe_ = std::make_shared<EchoProber>(std::move(o));
    } catch (const SysError& e) {
      throw Napi::Error::New(info.Env(), e.what());
    }
  }

 private:
  Napi::Value Start(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (started_) throw Napi::Error::New(env, "probe: start() was called already; make a new EchoProber per run");
    started_ = true;
    auto deferred = Napi::Promise::Deferred::New(env);
    auto ctx = std::make_unique<RunContext>(RunContext{probe_, deferred});
    Done done = Done::New(env, "EchoProber", 0, 1, ctx.get(), Settle, static_cast<void*>(nullptr));
    ctx.release();  // Settle owns it now
    probe_->Start([done]() mutable { done.Release(); });
    return deferred.Promise();
  }

  void Abort(const Napi::CallbackInfo&) { probe_->Abort(); }

  // encodeRequest(target, id, cookie, seq, size = 56) -> Buffer
  static Napi::Value EncodeRequest(const Napi::CallbackInfo& info) {
    const EchoKey k = KeyArgs(info);
    const size_t size = info[4].IsUndefined() ? kDefaultEchoData : info[4].ToNumber().Uint32Value();
    uint8_t buf[kEchoHdrLen + kMaxEchoData];
    const size_t n = BuildEchoRequest(k, static_cast<uint16_t>(info[3].ToNumber().Uint32Value()), size, buf, sizeof buf);
    if (n == 0) throw Napi::RangeError::New(info.Env(), "encodeRequest: size must be from " + std::to_string(kCookieLen) + " to " + std::to_string(kMaxEchoData));
    return Napi::Buffer<uint8_t>::Copy(info.Env(), buf, n);
  }

  // matchEcho(target, id, cookie, packet, from6?) -> {kind, ignored, seq, type, code, mtu, from}
  static Napi::Value Match(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const EchoKey k = KeyArgs(info);
    if (!info[3].IsBuffer()) throw Napi::TypeError::New(env, "matchEcho: packet must be a Buffer");
    const auto pkt = info[3].As<Napi::Buffer<uint8_t>>();
    const IpAddr from6 = info[4].IsUndefined() ? IpAddr{} : AddrArg(info, 4);
    const EchoMatch m = MatchEcho(k, pkt.Data(), pkt.Length(), from6);
    Napi::Object out = Napi::Object::New(env);
    out.Set("kind", m.kind == EchoKind::kReply ? "reply" : m.kind == EchoKind::kError ? "error" : "ignored");
    if (m.kind == EchoKind::kIgnored) {
      out.Set("ignored", m.ignored);
      return out;
    }
    out.Set("seq", m.seq);
    out.Set("type", m.type);
    out.Set("code", m.code);
    out.Set("mtu", m.mtu);
    out.Set("from", FormatIp(m.from));
    return out;
  }

  std::shared_ptr<EchoProber> probe_;
  bool started_ = false;
};

}  // namespace

void InitProber(Napi::Env env, Napi::Object exports) { exports.Set("EchoProber", ProberBinding::Define(env)); }

}  // namespace flannelts
