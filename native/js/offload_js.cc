// JavaScript bindings of the pure offload functions (offload/), for table-driven unit tests and the
// micro benchmarks. They run on the calling thread and never touch a file descriptor.
#include <napi.h>

#include <memory>
#include <vector>

#include "base/ip_packet.h"
#include "offload/gro.h"
#include "offload/gso.h"
#include "js/args.h"

namespace flannelts {

namespace {

// Parses "virtio header + IP packet" as a TUN read returns it.
struct TunRead {
  const char* error = nullptr;
  VnetHdr h;
  const uint8_t* pkt = nullptr;
  size_t len = 0;
};

TunRead ParseTunRead(const uint8_t* b, size_t n) {
  TunRead r;
  if (n < kVnetHdrLen) {
    r.error = "bad_vnet_hdr";
    return r;
  }
  r.h = ReadVnetHdr(b);
  const PacketInfo info = ClassifyPacket(b + kVnetHdrLen, n - kVnetHdrLen);
  if (info.cls != PacketClass::kIPv4 && info.cls != PacketClass::kIPv6) {
    r.error = "malformed";
    return r;
  }
  r.pkt = b + kVnetHdrLen;
  r.len = info.length;
  return r;
}

// gsoSplit(tunRead) -> { error: string | null, segments: Buffer[], segLen, lastLen }
Napi::Value GsoSplitJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Napi::Buffer<uint8_t> b = ArgBuffer(info, 0);
  Napi::Object o = Napi::Object::New(env);
  Napi::Array segs = Napi::Array::New(env);
  o.Set("segments", segs);
  const TunRead t = ParseTunRead(b.Data(), b.Length());
  if (t.error) {
    o.Set("error", t.error);
    return o;
  }
  std::vector<uint8_t> out(kMaxGsoSegments * 120 + 65536);
  const SplitResult r = GsoSplit(t.pkt, t.len, t.h, out.data(), out.size());
  if (r.err != OffloadError::kOk) {
    o.Set("error", OffloadErrorName(r.err));
    return o;
  }
  o.Set("error", env.Null());
  size_t off = 0;
  for (size_t i = 0; i < r.segments; i++) {
    const size_t len = i + 1 == r.segments ? r.lastLen : r.segLen;
    segs.Set(static_cast<uint32_t>(i), Napi::Buffer<uint8_t>::Copy(env, out.data() + off, len));
    off += len;
  }
  o.Set("segLen", Napi::Number::New(env, static_cast<double>(r.segLen)));
  o.Set("lastLen", Napi::Number::New(env, static_cast<double>(r.lastLen)));
  return o;
}

// gsoSplitInto(tunRead, out) -> number of segments, or -1 on an error. No allocation: for benchmarks.
Napi::Value GsoSplitIntoJs(const Napi::CallbackInfo& info) {
  const Napi::Buffer<uint8_t> b = ArgBuffer(info, 0);
  Napi::Buffer<uint8_t> out = ArgBuffer(info, 1);
  const TunRead t = ParseTunRead(b.Data(), b.Length());
  if (t.error) return Napi::Number::New(info.Env(), -1);
  const SplitResult r = GsoSplit(t.pkt, t.len, t.h, out.Data(), out.Length());
  return Napi::Number::New(info.Env(), r.err == OffloadError::kOk ? static_cast<double>(r.segments) : -1);
}

class CollectSink : public TunSink {
 public:
  std::vector<std::vector<uint8_t>> packets;
  std::vector<size_t> segments;
  void Write(const uint8_t* hdr, const iovec* parts, int nparts, size_t, size_t segs) override {
    std::vector<uint8_t> v(hdr, hdr + kVnetHdrLen);
    for (int i = 0; i < nparts; i++) {
      const uint8_t* b = static_cast<const uint8_t*>(parts[i].iov_base);
      v.insert(v.end(), b, b + parts[i].iov_len);
    }
    packets.push_back(std::move(v));
    segments.push_back(segs);
  }
};

class CountSink : public TunSink {
 public:
  size_t writes = 0;
  void Write(const uint8_t*, const iovec*, int, size_t, size_t) override { writes++; }
};

// groCoalesce(packets: Buffer[]) -> { packets: Buffer[] (virtio header + packet), segments: number[],
// malformed: number }. Inputs are IP packets as they come off the wire, in arrival order.
Napi::Value GroCoalesceJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray()) throw Napi::TypeError::New(env, "expected an array of Buffers");
  const Napi::Array in = info[0].As<Napi::Array>();
  CollectSink sink;
  GroTable gro(&sink);
  uint32_t malformed = 0;
  for (uint32_t i = 0; i < in.Length(); i++) {
    const Napi::Value v = in.Get(i);
    if (!v.IsBuffer()) throw Napi::TypeError::New(env, "expected an array of Buffers");
    const Napi::Buffer<uint8_t> b = v.As<Napi::Buffer<uint8_t>>();
    const PacketInfo p = ClassifyPacket(b.Data(), b.Length());
    if (p.cls != PacketClass::kIPv4 && p.cls != PacketClass::kIPv6) {
      malformed++;
      continue;
    }
    gro.Add(b.Data(), p.length);
  }
  gro.Flush();
  Napi::Object o = Napi::Object::New(env);
  Napi::Array pk = Napi::Array::New(env, sink.packets.size());
  Napi::Array sg = Napi::Array::New(env, sink.packets.size());
  for (size_t i = 0; i < sink.packets.size(); i++) {
    pk.Set(static_cast<uint32_t>(i), Napi::Buffer<uint8_t>::Copy(env, sink.packets[i].data(), sink.packets[i].size()));
    sg.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(sink.segments[i])));
  }
  o.Set("packets", pk);
  o.Set("segments", sg);
  o.Set("malformed", Napi::Number::New(env, malformed));
  o.Set("coalesced", Napi::Number::New(env, static_cast<double>(gro.coalesced())));
  return o;
}

// groCoalesceCount(concatenated, packetLen) -> writes; the packets are back to back, each packetLen
// bytes (no allocation per packet: for benchmarks).
Napi::Value GroCoalesceCountJs(const Napi::CallbackInfo& info) {
  const Napi::Buffer<uint8_t> b = ArgBuffer(info, 0);
  const size_t each = info[1].As<Napi::Number>().Uint32Value();
  static CountSink sink;
  static GroTable gro(&sink);  // one table reused: the benchmark measures coalescing, not setup
  sink.writes = 0;
  for (size_t off = 0; each && off + each <= b.Length(); off += each) gro.Add(b.Data() + off, each);
  gro.Flush();
  return Napi::Number::New(info.Env(), static_cast<double>(sink.writes));
}

}  // namespace

void InitOffload(Napi::Env env, Napi::Object exports) {
  exports.Set("gsoSplit", Napi::Function::New(env, GsoSplitJs, "gsoSplit"));
  exports.Set("gsoSplitInto", Napi::Function::New(env, GsoSplitIntoJs, "gsoSplitInto"));
  exports.Set("groCoalesce", Napi::Function::New(env, GroCoalesceJs, "groCoalesce"));
  exports.Set("groCoalesceCount", Napi::Function::New(env, GroCoalesceCountJs, "groCoalesceCount"));
}

}  // namespace flannelts
