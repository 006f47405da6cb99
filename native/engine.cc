// Engine worker threads. TX: poll -> read up to kTunBatch packets (super-packets with TSO) -> classify,
// route, TTL -> GSO split -> sendmmsg with UDP_SEGMENT. RX: recvmmsg (UDP_GRO batches) -> per inner
// packet checks, TTL -> GRO coalesce -> writev to the TUN. Counters are atomics updated once per
// packet (totals once per batch).
#include "engine.h"

#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <netinet/udp.h>
#include <sys/uio.h>

#include <algorithm>

#include "base/checksum.h"
#include "base/clock.h"
#include "base/ip_packet.h"
#include "offload/gro.h"
#include "offload/gso.h"
#include "reply_poll.h"
#include "base/errors.h"
#include "io/udp_batch.h"
#include "vxlan.h"

namespace flannelts {

// TX: one input buffer (a TUN read is at most a 64 KiB super-packet plus its virtio header); what
// goes on the wire is built in an arena (GSO segments back to back, or the packet copied) and sent
// when the arena or the message list is nearly full, or the TUN is drained.
constexpr size_t kTxArena = 1 << 20;
constexpr size_t kTxInput = kVnetHdrLen + kMaxPacket;
// TUN reads per wake-up: every packet of one batch can wait in the sender as its own run.
constexpr int kTunBatch = UdpSender::kMaxRuns;
// Only a small batch (a request, a handful of ACKs) starts the TX thread's reply polling: bulk sends
// keep the thread busy anyway, and polling between them takes a vCPU the receivers need.
constexpr uint64_t kReplyPollAfterAtMost = 4;

int64_t ThreadCpuNs(clockid_t c) { return c == clockid_t{} ? 0 : ClockNs(c); }

void SignalEventFd(int fd) {
  const uint64_t one = 1;
  ssize_t ignored = write(fd, &one, sizeof one);
  (void)ignored;
}

void DrainEventFd(int fd) {
  uint64_t v;
  ssize_t ignored = read(fd, &v, sizeof v);
  (void)ignored;
}

// The polling TX thread reads sockets with fewer, smaller-footprint slots than the RX thread: it is
// there for answers, and a bulk burst it finds is still handled, a batch at a time.
constexpr int kReplyPollRxBatch = 8;
// RX: UDP_GRO hands back up to 64 KiB per datagram, so fewer, larger slots than the TX side.
constexpr int kRxBatch = UdpReceiver::kMaxSlots;

// Per-thread buffers, allocated once when the thread starts; left uninitialised so an idle engine
// does not touch (and keep resident) pages it never uses. The scratch is also where a flush reports
// what it sent (SendEvents).
struct TxScratch : SendEvents {
  explicit TxScratch(Engine* e) : engine(e) {}
  void Sent(const DatagramRun& run, size_t segs, size_t bytes) override {
    PeerCounters* peer = static_cast<PeerCounters*>(run.owner);
    peer->txPackets.fetch_add(segs, std::memory_order_relaxed);
    peer->txBytes.fetch_add(bytes, std::memory_order_relaxed);
    if (segs > 1) engine->CountGsoSend();
    packets += segs;
    this->bytes += bytes;
  }
  void SendFailed(const uint8_t* p, size_t len) override { engine->CountDrop(kDropSocketSendError, CaptureDir::kTx, p, len); }
  void GsoDisabled() override { engine->NoteGsoDisabled(); }

  Engine* const engine;
  std::unique_ptr<uint8_t[]> in{new uint8_t[kTxInput]};
  std::unique_ptr<uint8_t[]> arena{new uint8_t[kTxArena]};
  size_t used = 0;
  uint8_t icmp[kIcmpMaxLen];
  UdpSender sender;
  uint64_t packets = 0, bytes = 0;
};

struct RxScratch {
  explicit RxScratch(int slots) : rx(slots) {}
  UdpReceiver rx;
  std::unique_ptr<TunWriter> writer;
  std::unique_ptr<GroTable> gro;  // only with a virtio header on the TUN
  std::unique_ptr<uint8_t[]> split;  // VXLAN without a virtio header: segments of an oversized packet
  uint64_t packets = 0, bytes = 0;
  int64_t nowMs = 0;  // wall clock of this batch, for the peers' last-seen time
};

Engine::Engine(const EngineOptions& o)
    : allowUnknownSource_(o.allowUnknownSource), encap_(o.encap), vni_(o.vni), mac_(o.mac), hasVtep4_(o.hasVtep4), innerMtu_(o.innerMtu), replyPollUs_(o.replyPollUs > 0 ? o.replyPollUs : 0),
      dataThreads_(o.dataThreads == 1 || o.dataThreads == 2 ? o.dataThreads : 0), modeDecider_(o.splitAtPercent) {
  split_.store(dataThreads_ == 2);
  std::memcpy(vtep4_, o.vtep4, 4);
  tun_ = o.tunFd >= 0 ? TunDevice::Adopt(o.tunFd, o.tunOffloads) : TunDevice::Open(o.tun);
  udp_ = std::make_unique<UdpConn>(o.udp);  // on throw, tun_ is closed by its destructor
  pool4_ = udp_->pool4();
  pool6_ = udp_->pool6();
  stopFd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (stopFd_ < 0) throw SysError("eventfd for engine " + tun_->name(), errno);
  txWakeFd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  rxWakeFd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (txWakeFd_ < 0 || rxWakeFd_ < 0) {
    const int err = errno;
    for (int fd : {stopFd_, txWakeFd_, rxWakeFd_})
      if (fd >= 0) ::close(fd);
    throw SysError("eventfd for engine " + tun_->name(), err);
  }
  tunName_ = tun_->name();
  tunIndex_ = tun_->ifindex();
  port_ = udp_->port();
  vnetHdr_ = tun_->offloads().vnetHdr;
  tso_ = tun_->offloads().tso;
  uso_ = tun_->offloads().uso;
  udpGso_.store(udp_->gso());
  udpGro_ = udp_->gro();
  offloadNotes_ = tun_->notes() + udp_->notes();
  qsbr_.Register(&txReader_);
  qsbr_.Register(&rxReader_);
}

Engine::~Engine() { Close(); }

void Engine::SetPeers(const std::vector<RouteSpec>& specs) {
  std::lock_guard<std::mutex> lock(ctl_);
  if (closed_) throw std::runtime_error("engine " + tunName_ + " is closed");
  if (encap_ == Encap::kVxlan) {
    // The TX path writes the peer's VTEP MAC into every frame: a VXLAN peer without one is a bug upstream.
    for (size_t i = 0; i < specs.size(); i++)
      if (specs[i].mac.empty()) throw std::invalid_argument("peer[" + std::to_string(i) + "].mac: a VXLAN peer needs its VTEP MAC");
  }
  std::unordered_map<std::string, std::shared_ptr<PeerCounters>> next;
  auto source = [&](const std::string& key) {
    auto it = counters_.find(key);
    auto c = it != counters_.end() ? it->second : std::make_shared<PeerCounters>();
    next[key] = c;
    return c;
  };
  std::unique_ptr<RouteTable> fresh = RouteTable::Build(specs, source);
  RouteTable* old = table_.exchange(fresh.release());
  qsbr_.Synchronize();
  delete old;
  // Counters of peers that left go away with the old table; the new table holds the rest.
  counters_ = std::move(next);
}

void Engine::Start() {
  std::lock_guard<std::mutex> lock(ctl_);
  if (closed_) throw std::runtime_error("engine " + tunName_ + " is closed");
  if (started_) return;
  started_ = true;
  modeWindowStart_.store(MonoNs());
  tx_ = std::thread([this] { TunToUdp(); });
  rx_ = std::thread([this] { UdpToTun(); });
  pthread_setname_np(tx_.native_handle(), "flannelts-tx");
  pthread_setname_np(rx_.native_handle(), "flannelts-rx");
  // Either thread reads both clocks when it looks at the thread mode; a failure leaves the mode at one
  // thread (the clock reads as 0), which is always correct, only slower under two-way load.
  clockid_t txc{}, rxc{};
  if (pthread_getcpuclockid(tx_.native_handle(), &txc) == 0 && pthread_getcpuclockid(rx_.native_handle(), &rxc) == 0) {
    txCpuClock_.store(txc);
    rxCpuClock_.store(rxc);
  }
}

void Engine::Close() {
  std::lock_guard<std::mutex> lock(ctl_);
  if (closed_) return;
  closed_ = true;
  stop_.store(true);
  // The eventfd stays readable (never read back), so every poll() in both threads returns.
  if (stopFd_ >= 0) SignalEventFd(stopFd_);
  if (tx_.joinable()) tx_.join();
  if (rx_.joinable()) rx_.join();
  if (tun_) tun_->Close();
  if (udp_) udp_->Close();
  for (int* fd : {&stopFd_, &txWakeFd_, &rxWakeFd_}) {
    if (*fd >= 0) ::close(*fd);
    *fd = -1;
  }
  delete table_.exchange(nullptr);  // threads are gone: nobody can hold it
  delete capture_.exchange(nullptr);
}

EngineStats Engine::Stats() {
  std::lock_guard<std::mutex> lock(ctl_);
  EngineStats s{};
  s.txPackets = tx_total_.packets.load(std::memory_order_relaxed);
  s.txBytes = tx_total_.bytes.load(std::memory_order_relaxed);
  s.rxPackets = rx_total_.packets.load(std::memory_order_relaxed);
  s.rxBytes = rx_total_.bytes.load(std::memory_order_relaxed);
  for (int i = 0; i < kDropCount; i++) s.drops[i] = drops_[i].load(std::memory_order_relaxed);
  s.arpReplies = arpReplies_.load(std::memory_order_relaxed);
  s.offloads = OffloadState{vnetHdr_, tso_, uso_, udpGso_.load(), udpGro_};
  s.replyPoll = ReplyPollCounters{replyPollUs_, replyPollHits_.load(std::memory_order_relaxed), replyPollMisses_.load(std::memory_order_relaxed),
                                  replyPollSkipped_.load(std::memory_order_relaxed)};
  s.threads = ThreadModeCounters{dataThreads_, split_.load(std::memory_order_relaxed) ? 2 : 1, splits_.load(std::memory_order_relaxed),
                                 merges_.load(std::memory_order_relaxed)};
  s.offload = OffloadCounters{gsoPackets_.load(std::memory_order_relaxed), gsoSegments_.load(std::memory_order_relaxed),
                              udpGsoSends_.load(std::memory_order_relaxed), groPackets_.load(std::memory_order_relaxed),
                              groSegments_.load(std::memory_order_relaxed), udpGroBatches_.load(std::memory_order_relaxed)};
  {
    std::lock_guard<std::mutex> notes(notesMu_);
    s.offloadNotes = offloadNotes_;
  }
  // Only the control thread swaps or frees tables, and it holds ctl_, so this pointer is stable.
  if (const RouteTable* t = table_.load()) {
    for (const RouteEntry& e : t->entries()) {
      s.peers.push_back(PeerStats{FormatPrefix(e.subnet), FormatIp(e.publicIp), e.mac.IsZero() ? "" : FormatMac(e.mac), e.port,
                                  e.counters->txPackets.load(std::memory_order_relaxed),
                                  e.counters->txBytes.load(std::memory_order_relaxed),
                                  e.counters->rxPackets.load(std::memory_order_relaxed),
                                  e.counters->rxBytes.load(std::memory_order_relaxed),
                                  e.counters->lastRxMs.load(std::memory_order_relaxed)});
    }
  }
  const CaptureRing* c = capture_.load();
  s.captureActive = c != nullptr;
  s.captureLost = captureLostDone_ + (c ? c->lost() : 0);
  return s;
}

// ---- capture ----

void Engine::StartCapture(const CaptureFilter& f) {
  std::lock_guard<std::mutex> lock(ctl_);
  if (closed_) throw std::runtime_error("engine " + tunName_ + " is closed");
  if (capture_.load()) throw std::runtime_error("a capture is already running on " + tunName_);
  capture_.store(new CaptureRing(f), std::memory_order_release);
}

CaptureCounters Engine::ReadCapture(const CaptureSink& fn) {
  std::lock_guard<std::mutex> lock(ctl_);
  CaptureRing* c = capture_.load();
  if (!c) return CaptureCounters{false, 0, 0};
  c->Drain(fn);
  return CaptureCounters{true, c->recorded(), c->lost()};
}

CaptureCounters Engine::StopCapture(const CaptureSink& fn) {
  std::lock_guard<std::mutex> lock(ctl_);
  std::unique_ptr<CaptureRing> c(capture_.exchange(nullptr));
  if (!c) return CaptureCounters{false, 0, 0};
  qsbr_.Synchronize();  // no worker can be inside Offer() any more
  c->Drain(fn);
  captureLostDone_ += c->lost();
  return CaptureCounters{false, c->recorded(), c->lost()};
}

void Engine::TapSlow(CaptureDir dir, uint8_t reason, const uint8_t* p, size_t len, const CapturePeer& peer) {
  // Pairs with the release store in StartCapture: the ring is fully built before we touch it.
  CaptureRing* c = capture_.load(std::memory_order_acquire);
  if (c) c->Offer(dir, reason, p, len, peer);
}

// ---- TUN -> UDP ----

void Engine::TunToUdp() {
  TxScratch s(this);
  std::unique_ptr<RxScratch> rx;  // first used when reply polling finds a datagram to read
  ReplyPollWindow window(replyPollUs_);
  const int tunFd = tun_->fd();
  // The TUN only while the directions are split; the wake eventfd brings the TUN back into the set.
  pollfd fds[3] = {{-1, POLLIN, 0}, {stopFd_, POLLIN, 0}, {txWakeFd_, POLLIN, 0}};
  while (!stop_.load(std::memory_order_relaxed)) {
    fds[0].fd = split_.load(std::memory_order_relaxed) ? tunFd : -1;
    qsbr_.Offline(&txReader_);  // blocked in poll: holds no table
    const int r = poll(fds, 3, -1);
    qsbr_.Quiescent(&txReader_);
    if (r < 0 && errno != EINTR) break;  // only EFAULT/EINVAL/ENOMEM: nothing sane to retry
    if (fds[1].revents) break;
    if (fds[2].revents & POLLIN) DrainEventFd(txWakeFd_);
    if (fds[0].revents & (POLLERR | POLLHUP | POLLNVAL)) {
      CountDrop(kDropTunReadError, CaptureDir::kTx);
      break;
    }
    if (fds[0].revents & POLLIN) TunSide(&txReader_, s, rx, window, true);
    MaybeSwitchMode();
  }
  qsbr_.Offline(&txReader_);
}

void Engine::TunSide(Qsbr::Reader* me, TxScratch& tx, std::unique_ptr<RxScratch>& rx, ReplyPollWindow& window, bool forTx) {
  {
    std::lock_guard<std::mutex> lock(txMu_);
    HandleTunBatch(tun_->fd(), udp_->fd4(), udp_->fd6(), tx);
  }
  ReplyPollAfterSend(me, tx, rx, window, forTx);
}

void Engine::ReplyPollAfterSend(Qsbr::Reader* me, TxScratch& tx, std::unique_ptr<RxScratch>& rx, ReplyPollWindow& window, bool forTx) {
  if (replyPollUs_ == 0 || tx.packets == 0 || tx.packets > kReplyPollAfterAtMost) return;
  // No polling while a stream arrives (rxBulk_), nor in the TX thread while the RX thread is awake.
  const bool rxBusy = rxBulk_.load(std::memory_order_relaxed) || (forTx && rxAwake_.load(std::memory_order_relaxed));
  const int w = rxBusy ? 0 : window.Next();
  if (w == 0) {
    replyPollSkipped_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  const int tunFd = tun_->fd();
  if (!rx) rx = NewRxScratch(tunFd, kReplyPollRxBatch);
  // An answer counts whichever thread handled it (the RX thread, woken for the same datagram, may win
  // the race for it): polling still pays off while answers come this soon.
  const uint64_t rxBefore = rx_total_.packets.load(std::memory_order_relaxed);
  PollAfterWork(me, tunFd, udp_->fd4(), udp_->fd6(), tx, *rx, w, forTx);
  const bool hit = rx_total_.packets.load(std::memory_order_relaxed) != rxBefore;
  window.Done(hit);
  (hit ? replyPollHits_ : replyPollMisses_).fetch_add(1, std::memory_order_relaxed);
}

void Engine::MaybeSwitchMode() {
  if (dataThreads_ != 0) return;
  const int64_t now = MonoNs();
  if (now - modeWindowStart_.load(std::memory_order_relaxed) < ThreadModeDecider::kWindowNs) return;
  std::unique_lock<std::mutex> lock(modeMu_, std::try_to_lock);
  if (!lock.owns_lock()) return;
  const int64_t start = modeWindowStart_.load(std::memory_order_relaxed);
  if (now - start < ThreadModeDecider::kWindowNs) return;  // the other thread just did
  const int64_t tun = tunBusyNs_.load(std::memory_order_relaxed), sock = sockBusyNs_.load(std::memory_order_relaxed);
  const int64_t cpu = ThreadCpuNs(txCpuClock_.load(std::memory_order_relaxed)) + ThreadCpuNs(rxCpuClock_.load(std::memory_order_relaxed));
  const bool split = split_.load(std::memory_order_relaxed);
  const bool want = modeDecider_.Next(split, now - start, cpu - modeCpuBase_, tun - modeTunBase_, sock - modeSockBase_);
  modeWindowStart_.store(now, std::memory_order_relaxed);
  modeTunBase_ = tun;
  modeSockBase_ = sock;
  modeCpuBase_ = cpu;
  if (want == split) return;
  split_.store(want, std::memory_order_relaxed);
  (want ? splits_ : merges_).fetch_add(1, std::memory_order_relaxed);
  // The thread that takes the TUN over may be asleep in a poll() set without it.
  SignalEventFd(want ? txWakeFd_ : rxWakeFd_);
}

// After a batch the answer often follows within microseconds: a ping reply, TCP ACKs, the next
// request of a request/response exchange. A thread asleep in poll() is woken for it, and on a VM whose
// idle vCPUs halt that cross-vCPU wake-up costs tens of microseconds (an IPI through the hypervisor on
// the waker's side, a halt exit on the wakee's). So the TX thread, after a small send, keeps polling
// every fd for up to windowUs (renewed after each answer from a socket) and handles what turns up itself: TUN
// reads under txMu_, socket reads under rxMu_, so each fd still has one reader at a time and order is
// kept. The RX thread calls this with windowUs == 0 after writing into the TUN: one pass, which
// catches what the kernel queued synchronously during our own write (forwarding and the receiver's
// softirq run inside writev), without waking the TX thread for it.
void Engine::PollAfterWork(Qsbr::Reader* me, int tunFd, int fd4, int fd6, TxScratch& tx, RxScratch& rx, int windowUs, bool forTx) {
  const int64_t windowNs = static_cast<int64_t>(windowUs) * 1000;
  int64_t deadline = windowUs > 0 ? MonoNs() + windowNs : 0;
  pollfd fds[3] = {{tunFd, POLLIN, 0}, {fd4, POLLIN, 0}, {fd6, POLLIN, 0}};  // fd -1 is ignored
  while (!stop_.load(std::memory_order_relaxed)) {
    bool answered = false;
    if (poll(fds, 3, 0) > 0) {
      // More to send is handled too, but does not count: the window waits for answers from the network.
      // (A one-way stream of small packets from a local pod would otherwise keep this thread polling
      // for good, taking the vCPU the sender needs.)
      if ((fds[0].revents & POLLIN) && txMu_.try_lock()) {
        HandleTunBatch(tunFd, fd4, fd6, tx);
        txMu_.unlock();
      }
      for (int i = 1; i <= 2; i++) {
        if (!(fds[i].revents & POLLIN) || !rxMu_.try_lock()) continue;
        HandleUdpBatch(fds[i].fd, tunFd, rx);
        rxMu_.unlock();
        answered = answered || rx.packets > 0;
      }
    }
    qsbr_.Quiescent(me);
    if (windowUs <= 0) break;
    if (forTx && rxAwake_.load(std::memory_order_relaxed)) break;  // the RX thread is up: answers are its own
    const int64_t now = MonoNs();
    if (answered) {
      // More may follow (the rest of a burst, the next request). A shorter renewal (a quarter window)
      // saved ~100 us of polling per ping but measured worse: ping p50 ~141 vs ~74 us over 1,800 pings.
      deadline = now + windowNs;
    } else if (now >= deadline) {
      break;
    } else {
      // What our work just woke (the pod's process that gets the reply) may be queued on this vCPU:
      // let it run rather than poll in its way.
      sched_yield();
    }
  }
}

void Engine::HandleTunBatch(int tunFd, int fd4, int fd6, TxScratch& s) {
  const int64_t started = MonoNs();  // busy time of the TUN side, for the thread mode
  const RouteTable* t = table_.load();
  const size_t hdr = vnetHdr_ ? kVnetHdrLen : 0;
  const bool vxlan = encap_ == Encap::kVxlan;
  const size_t headroom = vxlan ? kVxlanPrefix : 0;
  s.packets = s.bytes = 0;
  for (int i = 0; i < kTunBatch; i++) {
    uint8_t* in = s.in.get();
    const ssize_t got = tun_->Read(in, kTxInput);
    if (got < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) CountDrop(kDropTunReadError, CaptureDir::kTx);
      break;
    }
    if (static_cast<size_t>(got) < hdr) {
      CountDrop(kDropBadVnetHdr, CaptureDir::kTx, in, static_cast<size_t>(got));
      continue;
    }
    VnetHdr vh;
    if (hdr) vh = ReadVnetHdr(in);
    uint8_t* p = in + hdr;
    const PacketInfo info = ClassifyPacket(p, static_cast<size_t>(got) - hdr);
    if (info.cls != PacketClass::kIPv4 && info.cls != PacketClass::kIPv6) {
      CountDrop(kDropMalformed, CaptureDir::kTx, p, static_cast<size_t>(got) - hdr);
      continue;
    }
    const RouteEntry* e = t ? t->Lookup(info.dst) : nullptr;
    if (!e) {
      // As flannel does: tell the local sender, through the TUN, that the network is unreachable.
      CountDrop(kDropNoRoute, CaptureDir::kTx, p, info.length);
      const size_t n = BuildIcmpUnreachable(p, info.length, info.cls, s.icmp, sizeof s.icmp);
      if (n && !tun_->WritePlain(s.icmp, n)) CountDrop(kDropTunWriteError, CaptureDir::kRx, s.icmp, n);
      continue;
    }
    // Once on the super-packet: every segment copies this header, so each leaves with TTL-1 as
    // flannel's proxy would have sent it. Not for VXLAN: there the kernel's forwarding into the TUN
    // already did what it does for a vxlan device, and the engine is the device.
    const CapturePeer to{&e->publicIp, &e->subnet};
    if (!vxlan && DecrementTtl(p, info.length, info.cls) == TtlResult::kExpired) {
      CountDrop(kDropTtlExpired, CaptureDir::kTx, p, info.length, to);
      continue;
    }
    const int family = e->publicIp.family;
    int fd = family == 4 ? fd4 : fd6;
    if (fd < 0) {
      CountDrop(kDropSocketSendError, CaptureDir::kTx, p, info.length, to);  // no IPv6 socket bound
      continue;
    }
    if (vxlan) {
      const std::vector<int>& pool = family == 4 ? pool4_ : pool6_;
      if (!pool.empty()) fd = pool[FlowHash(p, info.length) % pool.size()];
    }
    // Room for the worst case (64 KiB of payload, headers per 256-byte segment) or flush first.
    if (s.sender.runs() == UdpSender::kMaxRuns || kTxArena - s.used < kMaxPacket + kMaxGsoSegments * (kMaxHeaderBytes + kVxlanPrefix) ||
        s.sender.datagrams() + kMaxGsoSegments > UdpSender::kMaxDatagrams)
      FlushTx(s);
    const SplitResult r = GsoSplit(p, info.length, vh, s.arena.get() + s.used, kTxArena - s.used, headroom);
    if (r.err != OffloadError::kOk) {
      CountDrop(kDropBadVnetHdr, CaptureDir::kTx, p, info.length, to);
      continue;
    }
    if (vxlan) {
      // Every segment is one Ethernet frame from our VTEP to the peer's, as the kernel would send it.
      uint8_t prefix[kVxlanPrefix];
      WriteVxlanPrefix(prefix, vni_, e->mac, mac_, info.cls == PacketClass::kIPv4 ? kEtherIPv4 : kEtherIPv6);
      uint8_t* at = s.arena.get() + s.used;
      for (size_t k = 0; k < r.segments; k++, at += r.segLen) std::memcpy(at, prefix, kVxlanPrefix);
    }
    // What goes on the wire: each segment, as a packet of its own (the inner packet, after any header).
    for (size_t k = 0; capture_.load(std::memory_order_relaxed) && k < r.segments; k++)
      Tap(CaptureDir::kTx, kNoDropReason, s.arena.get() + s.used + k * r.segLen + headroom, (k + 1 == r.segments ? r.lastLen : r.segLen) - headroom, to);
    if (vh.gsoType != kGsoNone) {
      gsoPackets_.fetch_add(1, std::memory_order_relaxed);
      gsoSegments_.fetch_add(r.segments, std::memory_order_relaxed);
    }
    DatagramRun& run = s.sender.Add(r.segments);
    run.data = s.arena.get() + s.used;
    run.segLen = r.segLen;
    run.lastLen = r.lastLen;
    run.segs = r.segments;
    run.owner = e->counters.get();
    // Copy the address: the send may outlive a table swap when it waits for room offline.
    std::memcpy(&run.addr, &e->sa, e->saLen);
    run.addrLen = e->saLen;
    run.fd = fd;
    s.used += r.bytes;
  }
  FlushTx(s);
  if (s.packets) {
    tx_total_.packets.fetch_add(s.packets, std::memory_order_relaxed);
    tx_total_.bytes.fetch_add(s.bytes, std::memory_order_relaxed);
  }
  tunBusyNs_.fetch_add(MonoNs() - started, std::memory_order_relaxed);
}

void Engine::FlushTx(TxScratch& s) {
  s.sender.Flush(udpGso_, stopFd_, stop_, s);
  s.used = 0;
}

void Engine::NoteGsoDisabled() {
  std::lock_guard<std::mutex> notes(notesMu_);
  offloadNotes_ += "udpGso: EIO from a UDP_SEGMENT send, disabled; ";
}

void Engine::Coalesced(size_t segments) {
  groPackets_.fetch_add(1, std::memory_order_relaxed);
  groSegments_.fetch_add(segments, std::memory_order_relaxed);
}

void Engine::WriteFailed(const uint8_t* pkt, size_t len, size_t segments) {
  CountDrop(kDropTunWriteError, CaptureDir::kRx, pkt, len, {}, segments);
}

// ---- UDP -> TUN ----

void Engine::UdpToTun() {
  const int tunFd = tun_->fd(), fd4 = udp_->fd4(), fd6 = udp_->fd6();
  std::unique_ptr<RxScratch> s = NewRxScratch(tunFd, kRxBatch);
  // TUN reads in this thread (both directions on one thread, and PollAfterWork) have their own TX buffers.
  std::unique_ptr<TxScratch> inlineTx(new TxScratch(this));
  ReplyPollWindow window(replyPollUs_);
  // fd -1 is ignored: the IPv6 socket when there is none, the TUN while the directions are split.
  pollfd fds[5] = {{stopFd_, POLLIN, 0}, {fd4, POLLIN, 0}, {fd6, POLLIN, 0}, {-1, POLLIN, 0}, {rxWakeFd_, POLLIN, 0}};
  while (!stop_.load(std::memory_order_relaxed)) {
    fds[3].fd = split_.load(std::memory_order_relaxed) ? -1 : tunFd;
    qsbr_.Offline(&rxReader_);
    rxAwake_.store(false, std::memory_order_relaxed);
    const int r = poll(fds, 5, -1);
    rxAwake_.store(true, std::memory_order_relaxed);
    qsbr_.Quiescent(&rxReader_);
    if (r < 0 && errno != EINTR) break;
    if (fds[0].revents) break;
    if (fds[4].revents & POLLIN) DrainEventFd(rxWakeFd_);
    uint64_t handled = 0;
    for (int i = 1; i <= 2; i++) {
      if (fds[i].revents & POLLERR) {
        // A pending socket error (only with IP_RECVERR or a connected socket, neither used today)
        // would keep poll() returning at once: read it to clear it, count it, carry on.
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(fds[i].fd, SOL_SOCKET, SO_ERROR, &err, &len);
        CountDrop(kDropSocketRecvError, CaptureDir::kRx);
      }
      if (!(fds[i].revents & POLLIN)) continue;
      if (!rxMu_.try_lock()) {
        sched_yield();  // the TX thread is reading the sockets right now (PollAfterWork)
        continue;
      }
      HandleUdpBatch(fds[i].fd, tunFd, *s);
      rxMu_.unlock();
      handled += s->packets;
    }
    if (fds[3].revents & (POLLERR | POLLHUP | POLLNVAL)) {
      CountDrop(kDropTunReadError, CaptureDir::kTx);
      break;
    }
    if (handled > 0) rxBulk_.store(handled > static_cast<uint64_t>(kReplyPollAfterAtMost), std::memory_order_relaxed);
    if (fds[3].revents & POLLIN) TunSide(&rxReader_, *inlineTx, s, window, false);  // both directions on one thread
    // What we wrote into the TUN is often answered at once (see PollAfterWork).
    if (handled > 0) PollAfterWork(&rxReader_, tunFd, fd4, fd6, *inlineTx, *s, 0, false);
    MaybeSwitchMode();
  }
  qsbr_.Offline(&rxReader_);
}

std::unique_ptr<RxScratch> Engine::NewRxScratch(int tunFd, int batch) {
  std::unique_ptr<RxScratch> s(new RxScratch(batch));
  s->writer = std::make_unique<TunWriter>(*tun_, static_cast<TunWriteEvents*>(this));
  if (vnetHdr_) s->gro = std::make_unique<GroTable>(s->writer.get());
  // A Linux vxlan sender over a device with checksum offload (veth, virtio) may leave the inner TCP/UDP
  // checksum partial, to be finished by hardware that a packet handed between namespaces never meets;
  // the kernel's own vxlan receiver trusts it from the skb state, which a socket does not show us.
  // The outer UDP checksum, verified by the kernel before the datagram reached us, covers those bytes,
  // so the VTEP hands every TCP/UDP packet to the TUN as CHECKSUM_PARTIAL (as coalesced ones are
  // anyway: the kernel fills the checksum in if the packet leaves the node), or without a virtio
  // header finishes the checksum itself.
  if (s->gro && encap_ == Encap::kVxlan) s->gro->SetPartialChecksums(true);
  return s;
}

void Engine::HandleUdpBatch(int sock, int tunFd, RxScratch& s) {
  s.packets = s.bytes = 0;  // also when nothing is read: callers look at them after every call
  const int64_t started = MonoNs();  // busy time of the socket side (a read that finds nothing is not)
  const int n = s.rx.Receive(sock, udpGro_);
  if (n < 0) {
    if (errno != EAGAIN && errno != EINTR) CountDrop(kDropSocketRecvError, CaptureDir::kRx);
    return;
  }
  const RouteTable* t = table_.load();
  timespec now{};
  clock_gettime(CLOCK_REALTIME_COARSE, &now);
  s.nowMs = static_cast<int64_t>(now.tv_sec) * 1000 + now.tv_nsec / 1000000;
  for (int i = 0; i < n; i++) {
    uint8_t* p = s.rx.data(i);
    const size_t len = s.rx.length(i);
    const IpAddr outer = FromSockaddr(s.rx.source(i));
    if (s.rx.truncated(i)) {
      CountDrop(kDropMalformed, CaptureDir::kRx, p, len, {&outer});
      continue;
    }
    const size_t seg = s.rx.groSegment(i);
    if (seg == 0 || seg >= len) {
      HandleDatagram(p, len, outer, t, tunFd, s);
      continue;
    }
    // UDP_GRO: the kernel glued same-size datagrams from one sender; each is still one inner packet.
    udpGroBatches_.fetch_add(1, std::memory_order_relaxed);
    for (size_t off = 0; off < len; off += seg) HandleDatagram(p + off, std::min(seg, len - off), outer, t, tunFd, s);
  }
  if (s.gro) s.gro->Flush();
  if (s.packets) {
    rx_total_.packets.fetch_add(s.packets, std::memory_order_relaxed);
    rx_total_.bytes.fetch_add(s.bytes, std::memory_order_relaxed);
  }
  sockBusyNs_.fetch_add(MonoNs() - started, std::memory_order_relaxed);
}

void Engine::HandleDatagram(uint8_t* p, size_t len, const IpAddr& outer, const RouteTable* t, int tunFd, RxScratch& s) {
  const bool vxlan = encap_ == Encap::kVxlan;
  VxlanFrame frame{};
  if (vxlan) {
    frame = ParseVxlan(p, len, vni_, mac_);
    switch (frame.status) {
      case VxlanStatus::kIp: break;
      case VxlanStatus::kArp:
        if (!allowUnknownSource_ && !(t && t->IsPeerAddress(outer))) {
          CountDrop(kDropUnknownPeer, CaptureDir::kRx, p + frame.payload, len - frame.payload, {&outer});
        } else {
          HandleArp(p + frame.payload, len - frame.payload, frame.src, outer);
        }
        return;
      // A capture shows what the frame carried (after VXLAN + Ethernet), or the whole truncated datagram.
      case VxlanStatus::kWrongVni: CountDrop(kDropWrongVni, CaptureDir::kRx, p + frame.payload, len - frame.payload, {&outer}); return;
      case VxlanStatus::kNotForUs: CountDrop(kDropWrongDstMac, CaptureDir::kRx, p + frame.payload, len - frame.payload, {&outer}); return;
      case VxlanStatus::kBadEtherType: CountDrop(kDropBadEtherType, CaptureDir::kRx, p + frame.payload, len - frame.payload, {&outer}); return;
      case VxlanStatus::kBadFlags: CountDrop(kDropMalformed, CaptureDir::kRx, p + frame.payload, len - frame.payload, {&outer}); return;
      default: CountDrop(kDropMalformed, CaptureDir::kRx, p, len, {&outer}); return;  // truncated
    }
    p += frame.payload;
    len -= frame.payload;
  }
  const PacketInfo info = ClassifyPacket(p, len);
  if (info.cls != PacketClass::kIPv4 && info.cls != PacketClass::kIPv6) {
    CountDrop(kDropMalformed, CaptureDir::kRx, p, len, {&outer});
    return;
  }
  // flannel accepts anything; we require the datagram to come from a peer, carrying traffic from
  // that peer's subnet, so an underlay host cannot inject packets with pod source addresses.
  if (!allowUnknownSource_ && !(t && t->IsPeerAddress(outer))) {
    CountDrop(kDropUnknownPeer, CaptureDir::kRx, p, info.length, {&outer});
    return;
  }
  const RouteEntry* e = t ? t->Lookup(info.src) : nullptr;
  if (!e || (!allowUnknownSource_ && !(e->publicIp == outer))) {
    CountDrop(kDropSpoofedSource, CaptureDir::kRx, p, info.length, {&outer});
    return;
  }
  const CapturePeer from{&outer, &e->subnet};
  if (vxlan) {
    // The frame must come from the VTEP that owns the inner source's subnet (its VtepMAC in the
    // lease), as the kernel's FDB/neighbour entries would require of a frame it accepts.
    if (frame.src != e->mac) {
      CountDrop(kDropUnknownMac, CaptureDir::kRx, p, info.length, from);
      return;
    }
  } else if (DecrementTtl(p, info.length, info.cls) == TtlResult::kExpired) {
    CountDrop(kDropTtlExpired, CaptureDir::kRx, p, info.length, from);
    return;
  }
  Tap(CaptureDir::kRx, kNoDropReason, p, info.length, from);  // before GRO may merge it
  if (vxlan && innerMtu_ && info.length > innerMtu_ && WriteOversized(p, info.length, tunFd, s)) {
    // written (or its write errors counted) as segments of the TUN's MTU
  } else if (s.gro) {
    s.gro->Add(p, info.length);  // write errors are counted by the TunWriter
  } else {
    if (vxlan) FixL4Checksum(p, info.length);  // see UdpToTun: the inner checksum may be partial
    if (!tun_->WriteRaw(p, info.length)) {
      CountDrop(kDropTunWriteError, CaptureDir::kRx, p, info.length, from);
      return;
    }
  }
  e->counters->rxPackets.fetch_add(1, std::memory_order_relaxed);
  e->counters->rxBytes.fetch_add(info.length, std::memory_order_relaxed);
  // Same cache line as the counters just written; stored only when a second has passed.
  if (s.nowMs - e->counters->lastRxMs.load(std::memory_order_relaxed) >= 1000) e->counters->lastRxMs.store(s.nowMs, std::memory_order_relaxed);
  s.packets++;
  s.bytes += info.length;
}

bool Engine::WriteOversized(uint8_t* p, size_t n, int tunFd, RxScratch& s) {
  VnetHdr h;
  if (!MakeTcpSuperPacket(p, n, innerMtu_, &h)) return false;
  const size_t segs = (n - h.hdrLen + h.gsoSize - 1) / h.gsoSize;
  if (s.gro) {
    s.gro->Flush();  // whatever of the flow is open goes first, so the stream stays in order
    uint8_t hdr[kVnetHdrLen];
    WriteVnetHdr(hdr, h);
    s.writer->WritePacket(hdr, p, n, segs);
    return true;
  }
  constexpr size_t kSplitBytes = kMaxPacket + kMaxGsoSegments * 120;
  if (!s.split) s.split.reset(new uint8_t[kSplitBytes]);
  const SplitResult r = GsoSplit(p, n, h, s.split.get(), kSplitBytes);
  if (r.err != OffloadError::kOk) return false;
  const uint8_t* at = s.split.get();
  for (size_t k = 0; k < r.segments; k++) {
    const size_t len = k + 1 == r.segments ? r.lastLen : r.segLen;
    if (!tun_->WriteRaw(at, len)) CountDrop(kDropTunWriteError, CaptureDir::kRx, at, len);
    at += len;
  }
  return true;
}

void Engine::HandleArp(const uint8_t* arp, size_t n, const Mac& requester, const IpAddr& outer) {
  uint8_t reply[kVxlanPrefix + kArpLen];
  if (!hasVtep4_ || BuildArpReply(arp, n, mac_, vtep4_, reply + kVxlanPrefix) == 0) {
    CountDrop(kDropArpIgnored, CaptureDir::kRx, arp, n, {&outer});
    return;
  }
  WriteVxlanPrefix(reply, vni_, requester, mac_, kEtherArp);
  // To the sender's VTEP port (every flannel node uses the same one), from our listening socket.
  sockaddr_storage ss;
  const socklen_t sl = ToSockaddr(outer, port_, &ss);
  const int fd = outer.family == 4 ? udp_->fd4() : udp_->fd6();
  if (fd < 0 || sendto(fd, reply, sizeof reply, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&ss), sl) < 0) {
    CountDrop(kDropSocketSendError, CaptureDir::kTx, reply + kVxlanPrefix, kArpLen, {&outer});
    return;
  }
  arpReplies_.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace flannelts
