// The WireGuard encapsulation's side of the engine; see wireguard.h.
#include "encap/wireguard.h"

#include <time.h>

#include <cstdlib>
#include <stdexcept>
#include <string>

#include "base/clock.h"
#include "routes/routes.h"

namespace flannelts {

namespace {

// The route's per-peer state: the device's peer of the route's public key.
class WgPeerState final : public EncapPeer {
 public:
  explicit WgPeerState(std::shared_ptr<wg::Peer> p) : peer(std::move(p)) {}
  const std::shared_ptr<wg::Peer> peer;
};

// 64 hex digits -> 32 bytes; false for anything else.
bool ParseHexKey(const std::string& hex, uint8_t out[wg::kKeyLen]) {
  if (hex.size() != 2 * wg::kKeyLen) return false;
  for (size_t i = 0; i < wg::kKeyLen; i++) {
    int v = 0;
    for (int j = 0; j < 2; j++) {
      const char c = hex[2 * i + j];
      const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
      if (d < 0) return false;
      v = v << 4 | d;
    }
    out[i] = static_cast<uint8_t>(v);
  }
  return true;
}

// The data path's clocks: coarse (a few ns instead of tens), since the protocol's times are seconds;
// the timers' own thread and the handshake worker read the precise ones.
wg::Now CoarseNow() { return wg::Now{ClockNs(CLOCK_MONOTONIC_COARSE), ClockNs(CLOCK_REALTIME_COARSE)}; }

int DropFor(wg::Reason r) {
  switch (r) {
    case wg::Reason::kUnknownReceiver: return kDropWgUnknownReceiver;
    case wg::Reason::kDecryptFailed: return kDropWgDecryptFailed;
    case wg::Reason::kReplay: return kDropWgReplay;
    case wg::Reason::kExpiredKeypair: return kDropWgExpiredKeypair;
    case wg::Reason::kNoEndpoint: return kDropWgNoEndpoint;
    default: return kDropMalformed;  // too short, unknown type, bad length, too big
  }
}

bool IsHandshakeMessage(uint32_t type, size_t n) {
  return (type == wg::kInitiation && n == wg::kInitiationSize) || (type == wg::kResponse && n == wg::kResponseSize) ||
         (type == wg::kCookieReply && n == wg::kCookieReplySize);
}

class WireGuard final : public Encapsulation {
 public:
  WireGuard(std::shared_ptr<WgInterface> iface, int fd4, int fd6) : Encapsulation(Traits()), iface_(std::move(iface)), dev_(iface_->device()), fd4_(fd4), fd6_(fd6) {}
  ~WireGuard() override { Stop(); }

  void CheckPeers(const std::vector<RouteSpec>& specs) const override {
    uint8_t key[wg::kKeyLen];
    for (size_t i = 0; i < specs.size(); i++) {
      const std::string where = "peer[" + std::to_string(i) + "].publicKey";
      if (!ParseHexKey(specs[i].publicKey, key)) throw std::invalid_argument(where + ": a WireGuard route needs its peer's public key (64 hex digits)");
      if (!dev_.FindPeer(key)) throw std::invalid_argument(where + ": no WireGuard peer with this key (configure the peer before its routes)");
    }
  }

  // Two routes (allowed IPs) of one peer share its session.
  std::string PeerKey(const RouteSpec& spec) const override { return spec.publicKey; }

  std::shared_ptr<EncapPeer> PeerState(const RouteSpec& spec, std::shared_ptr<EncapPeer> previous) override {
    uint8_t key[wg::kKeyLen];
    if (!ParseHexKey(spec.publicKey, key)) return nullptr;
    std::shared_ptr<wg::Peer> peer = dev_.FindPeer(key);
    // The same peer as last time (not one removed and configured again since): keep the state.
    if (previous && static_cast<WgPeerState*>(previous.get())->peer == peer) return previous;
    return peer ? std::make_shared<WgPeerState>(std::move(peer)) : nullptr;
  }

  Sealed Seal(const RouteEntry& route, const uint8_t*, const PacketInfo&, WireRun& run, EncapHost& host) override {
    const auto* state = static_cast<const WgPeerState*>(route.encapPeer.get());
    if (!state) return Sealed{TxVerdict::kDrop, kDropWgNoEndpoint};
    DataOutput out(*iface_, host);
    const wg::Now now = CoarseNow();
    size_t sent = 0, firstLen = 0, lastLen = 0;
    wg::Endpoint to;
    wg::Verdict stop = wg::Verdict::kSend;
    wg::Reason why = wg::Reason::kSent;
    // Every segment in place (its 16-byte header in the head room, padding and tag in the tail
    // room); the device takes the peer's lock per segment (measured: the lock is a few percent of
    // the ChaCha20-Poly1305 work of a segment, see docs/wireguard.md).
    for (size_t k = 0; k < run.segs; k++) {
      uint8_t* seg = run.data + k * run.stride;
      const size_t len = k + 1 == run.segs ? run.lastLen : run.segLen;
      const wg::TxResult r = dev_.Seal(*state->peer, seg, len - wg::kTransportHeader, run.stride, now, out);
      if (r.verdict != wg::Verdict::kSend) {
        // Queued (no session yet: the device copied it and the rest queue behind it) or dropped.
        stop = r.verdict;
        why = r.reason;
        if (r.verdict == wg::Verdict::kQueued) continue;
        break;
      }
      if (sent == 0) {
        to = r.to;
        firstLen = r.length;
      } else if (sent != k) {
        break;  // a segment in between did not go: the run is only what went in one piece
      }
      lastLen = r.length;
      sent++;
    }
    if (dev_.TakeLowered()) host.RequestTick();
    if (sent == 0) return stop == wg::Verdict::kQueued ? Sealed{TxVerdict::kQueued, kDropCount} : Sealed{TxVerdict::kDrop, DropFor(why)};
    const int fd = to.family == 6 ? fd6_ : fd4_;
    if (fd < 0) return Sealed{TxVerdict::kDrop, kDropSocketSendError};  // roamed to a family we have no socket for
    run.segs = sent;
    run.segLen = firstLen;
    run.lastLen = lastLen;
    run.fd = fd;
    *run.toLen = ToSockaddr(FromWgEndpoint(to), to.port, run.to);  // the peer's current (roamed) endpoint
    return {};
  }

  int64_t NextTickNs() const override { return dev_.EarliestDeadline(); }

  void Tick(int64_t nowNs, EncapHost& host) override {
    DataOutput out(*iface_, host);
    dev_.Tick(wg::Now{nowNs, ClockNs(CLOCK_REALTIME)}, out);
    dev_.TakeLowered();  // this thread computes its next timeout after Tick anyway
  }

  Opened Open(uint8_t* p, size_t n, const IpAddr& outer, uint16_t outerPort, EncapHost& host) override {
    WgEncapCounters& c = iface_->counters();
    c.rxDatagrams.fetch_add(1, std::memory_order_relaxed);
    const wg::Endpoint from = ToWgEndpoint(outer, outerPort);
    const uint32_t type = n >= 4 ? wg::Le32(p) : 0;
    if (IsHandshakeMessage(type, n)) {
      if (!iface_->worker().Enqueue(p, n, from)) {
        c.handshakeQueueFull.fetch_add(1, std::memory_order_relaxed);
        return Opened{RxVerdict::kDrop, kDropWgHandshakeQueueFull, 0, 0};
      }
      c.handshakeQueued.fetch_add(1, std::memory_order_relaxed);
      return Opened{RxVerdict::kHandled, kDropCount, 0, 0};
    }
    // Transport data, and whatever is no message at all: the device decrypts the one in place and
    // counts the other by reason, neither with any X25519.
    DataOutput out(*iface_, host);
    const wg::RxResult r = dev_.Receive(p, n, from, CoarseNow(), false, out);
    if (dev_.TakeLowered()) host.RequestTick();
    switch (r.verdict) {
      case wg::Verdict::kInner: return Opened{RxVerdict::kInner, kDropCount, r.offset, Token(r.peer.get())};
      case wg::Verdict::kHandled: return Opened{RxVerdict::kHandled, kDropCount, 0, 0};  // a keepalive
      default: return Opened{RxVerdict::kDrop, DropFor(r.reason), 0, 0};
    }
  }

  // The session's peer must be the peer whose allowed IPs hold the inner source.
  int Admit(const RouteEntry& route, uint64_t sender) const override {
    const auto* state = static_cast<const WgPeerState*>(route.encapPeer.get());
    return state && Token(state->peer.get()) == sender ? kDropCount : kDropSpoofedSource;
  }

  void Start(EncapHost& host) override {
    iface_->Attach(&host);
    iface_->worker().Start(host);
  }

  void Stop() override {
    iface_->worker().Stop();
    iface_->Attach(nullptr);
  }

 private:
  // What the data threads (and the timer tick) send on their own; initiations go to the worker.
  class DataOutput : public wg::Output {
   public:
    DataOutput(WgInterface& i, EncapHost& host) : i_(i), host_(host) {}
    void SendOwn(const wg::Endpoint& to, const uint8_t* data, size_t n) override { host_.SendOwn(FromWgEndpoint(to), to.port, data, n, 0); }
    void SealCookie(const wg::CookieSealJob& job) override { i_.cookies().Seal(job); }
    void OpenCookie(const wg::CookieOpenJob& job) override { i_.cookies().Open(job); }
    bool DeferInitiation(const std::shared_ptr<wg::Peer>& peer) override {
      i_.worker().RequestInitiation(peer);
      i_.counters().initiationsDeferred.fetch_add(1, std::memory_order_relaxed);
      return true;
    }

   private:
    WgInterface& i_;
    EncapHost& host_;
  };

  static uint64_t Token(const wg::Peer* p) { return static_cast<uint64_t>(reinterpret_cast<uintptr_t>(p)); }

  static EncapTraits Traits() {
    EncapTraits t;
    t.headroom = wg::kTransportHeader;
    t.tailroom = wg::kPaddingMultiple - 1 + wg::kTagLen;  // padding to 16, then the tag
    t.decrementTtl = false;
    t.checkOuterSource = false;
    return t;
  }

  const std::shared_ptr<WgInterface> iface_;
  wg::Device& dev_;
  const int fd4_, fd6_;
};

}  // namespace

std::unique_ptr<Encapsulation> MakeWireGuard(std::shared_ptr<WgInterface> iface, int fd4, int fd6) {
  return std::make_unique<WireGuard>(std::move(iface), fd4, fd6);
}

}  // namespace flannelts
