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
#include "encap/flannel_udp.h"

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
    : allowUnknownSource_(o.allowUnknownSource), replyPollUs_(o.replyPollUs > 0 ? o.replyPollUs : 0),
      dataThreads_(o.dataThreads == 1 || o.dataThreads == 2 ? o.dataThreads : 0), modeDecider_(o.splitAtPercent) {
  split_.store(dataThreads_ == 2);
  tun_ = o.tunFd >= 0 ? TunDevice::Adopt(o.tunFd, o.tunOffloads) : TunDevice::Open(o.tun);
  udp_ = std::make_unique<UdpConn>(o.udp);  // on throw, tun_ is closed by its destructor
  encap_ = o.encap ? o.encap(*udp_) : MakeFlannelUdp();
  traits_ = encap_->traits();
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
  encap_->CheckPeers(specs);
  std::unordered_map<std::string, std::shared_ptr<PeerCounters>> next;
  auto source = [&](const std::string& key) {
    auto it = counters_.find(key);
    auto c = it != counters_.end() ? it->second : std::make_shared<PeerCounters>();
    next[key] = c;
    return c;
  };
  std::unique_ptr<RouteTable> fresh = RouteTable::Build(specs, source);
  // The encapsulation's per-peer state, kept under its key like the counters under the subnet (two
  // subnets of one WireGuard peer share one state).
  std::unordered_map<std::string, std::shared_ptr<EncapPeer>> nextPeers;
  for (size_t i = 0; i < specs.size(); i++) {
    const std::string key = encap_->PeerKey(specs[i]);
    if (key.empty()) continue;
    std::shared_ptr<EncapPeer>& state = nextPeers[key];
    if (!state) {
      auto prev = encapPeers_.find(key);
      state = encap_->PeerState(specs[i], prev != encapPeers_.end() ? prev->second : nullptr);
    }
    fresh->SetEncapPeer(i, state);
  }
  RouteTable* old = table_.exchange(fresh.release());
  qsbr_.Synchronize();
  delete old;
  // Counters and states of peers that left go away with the old table; the new table holds the rest.
  counters_ = std::move(next);
  encapPeers_ = std::move(nextPeers);
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
  s.arpReplies = encap_->ArpReplies();
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
    const bool ownsTun = split_.load(std::memory_order_relaxed);
    fds[0].fd = ownsTun ? tunFd : -1;
    qsbr_.Offline(&txReader_);  // blocked in poll: holds no table
    const int r = poll(fds, 3, ownsTun ? TickTimeoutMs() : -1);
    qsbr_.Quiescent(&txReader_);
    if (r < 0 && errno != EINTR) break;  // only EFAULT/EINVAL/ENOMEM: nothing sane to retry
    if (fds[1].revents) break;
    if (fds[2].revents & POLLIN) DrainEventFd(txWakeFd_);
    if (fds[0].revents & (POLLERR | POLLHUP | POLLNVAL)) {
      CountDrop(kDropTunReadError, CaptureDir::kTx);
      break;
    }
    if (fds[0].revents & POLLIN) TunSide(&txReader_, s, rx, window, true);
    if (split_.load(std::memory_order_relaxed)) MaybeTick();
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
  const size_t headroom = traits_.headroom;
  // Arena room for the worst case: 64 KiB of payload, headers and encapsulation per 256-byte segment.
  const size_t worstCase = kMaxPacket + kMaxGsoSegments * (kMaxHeaderBytes + headroom + traits_.tailroom);
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
    // flannel's proxy would have sent it. Not where the engine is a device (VXLAN): there the
    // kernel's forwarding into the TUN already did what it does for a device.
    const CapturePeer to{&e->publicIp, &e->subnet};
    if (traits_.decrementTtl && DecrementTtl(p, info.length, info.cls) == TtlResult::kExpired) {
      CountDrop(kDropTtlExpired, CaptureDir::kTx, p, info.length, to);
      continue;
    }
    const int fd = e->publicIp.family == 4 ? fd4 : fd6;
    if (fd < 0) {
      CountDrop(kDropSocketSendError, CaptureDir::kTx, p, info.length, to);  // no IPv6 socket bound
      continue;
    }
    if (s.sender.runs() == UdpSender::kMaxRuns || kTxArena - s.used < worstCase || s.sender.datagrams() + kMaxGsoSegments > UdpSender::kMaxDatagrams)
      FlushTx(s);
    const SplitResult r = GsoSplit(p, info.length, vh, s.arena.get() + s.used, kTxArena - s.used, headroom);
    if (r.err != OffloadError::kOk) {
      CountDrop(kDropBadVnetHdr, CaptureDir::kTx, p, info.length, to);
      continue;
    }
    // What goes on the wire: each segment, as a packet of its own (the inner packet, before the
    // encapsulation may encrypt it in place).
    for (size_t k = 0; capture_.load(std::memory_order_relaxed) && k < r.segments; k++)
      Tap(CaptureDir::kTx, kNoDropReason, s.arena.get() + s.used + k * r.segLen + headroom, (k + 1 == r.segments ? r.lastLen : r.segLen) - headroom, to);
    if (vh.gsoType != kGsoNone) {
      gsoPackets_.fetch_add(1, std::memory_order_relaxed);
      gsoSegments_.fetch_add(r.segments, std::memory_order_relaxed);
    }
    // Copy the address: the send may outlive a table swap when it waits for room offline.
    sockaddr_storage addr;
    std::memcpy(&addr, &e->sa, e->saLen);
    socklen_t addrLen = e->saLen;
    WireRun wire{s.arena.get() + s.used, r.segments, r.segLen, r.lastLen, fd, &addr, &addrLen};
    const Sealed sealed = encap_->Seal(*e, p, info, wire, *this);
    if (sealed.verdict == TxVerdict::kDrop) CountDrop(sealed.drop, CaptureDir::kTx, p, info.length, to);
    if (sealed.verdict != TxVerdict::kSend) continue;  // a queued packet's segments were copied out
    DatagramRun& run = s.sender.Add(wire.segs);
    run.data = wire.data;
    run.segLen = wire.segLen;
    run.lastLen = wire.lastLen;
    run.segs = wire.segs;
    run.owner = e->counters.get();
    std::memcpy(&run.addr, &addr, addrLen);
    run.addrLen = addrLen;
    run.fd = wire.fd;
    s.used += (wire.segs - 1) * wire.segLen + wire.lastLen;
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
    const bool ownsTun = !split_.load(std::memory_order_relaxed);
    fds[3].fd = ownsTun ? tunFd : -1;
    qsbr_.Offline(&rxReader_);
    rxAwake_.store(false, std::memory_order_relaxed);
    const int r = poll(fds, 5, ownsTun ? TickTimeoutMs() : -1);
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
    if (!split_.load(std::memory_order_relaxed)) MaybeTick();
    MaybeSwitchMode();
  }
  qsbr_.Offline(&rxReader_);
}

std::unique_ptr<RxScratch> Engine::NewRxScratch(int tunFd, int batch) {
  std::unique_ptr<RxScratch> s(new RxScratch(batch));
  s->writer = std::make_unique<TunWriter>(*tun_, static_cast<TunWriteEvents*>(this));
  if (vnetHdr_) s->gro = std::make_unique<GroTable>(s->writer.get());
  // Why an encapsulation may want this: encap/vxlan.cc.
  if (s->gro && traits_.partialChecksums) s->gro->SetPartialChecksums(true);
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
  const Opened o = encap_->Open(p, len, outer, *this);
  if (o.verdict == RxVerdict::kHandled) return;
  if (o.verdict == RxVerdict::kDrop) {
    CountDrop(o.drop, CaptureDir::kRx, p + o.offset, len - o.offset, {&outer});
    return;
  }
  p += o.offset;
  len -= o.offset;
  const PacketInfo info = ClassifyPacket(p, len);
  if (info.cls != PacketClass::kIPv4 && info.cls != PacketClass::kIPv6) {
    CountDrop(kDropMalformed, CaptureDir::kRx, p, len, {&outer});
    return;
  }
  // flannel accepts anything; we require the datagram to come from a peer, carrying traffic from
  // that peer's subnet, so an underlay host cannot inject packets with pod source addresses. (An
  // encapsulation that authenticates its peers, like WireGuard, turns the outer check off and
  // answers Admit from its session instead.)
  const bool outerCheck = traits_.checkOuterSource && !allowUnknownSource_;
  if (outerCheck && !(t && t->IsPeerAddress(outer))) {
    CountDrop(kDropUnknownPeer, CaptureDir::kRx, p, info.length, {&outer});
    return;
  }
  const RouteEntry* e = t ? t->Lookup(info.src) : nullptr;
  if (!e || (outerCheck && !(e->publicIp == outer))) {
    CountDrop(kDropSpoofedSource, CaptureDir::kRx, p, info.length, {&outer});
    return;
  }
  const CapturePeer from{&outer, &e->subnet};
  if (const int drop = encap_->Admit(*e, o.sender); drop != kDropCount) {
    CountDrop(drop, CaptureDir::kRx, p, info.length, from);
    return;
  }
  if (traits_.decrementTtl && DecrementTtl(p, info.length, info.cls) == TtlResult::kExpired) {
    CountDrop(kDropTtlExpired, CaptureDir::kRx, p, info.length, from);
    return;
  }
  Tap(CaptureDir::kRx, kNoDropReason, p, info.length, from);  // before GRO may merge it
  if (traits_.resegmentAbove && info.length > traits_.resegmentAbove && WriteOversized(p, info.length, tunFd, s)) {
    // written (or its write errors counted) as segments of the TUN's MTU
  } else if (s.gro) {
    s.gro->Add(p, info.length);  // write errors are counted by the TunWriter
  } else {
    if (traits_.partialChecksums) FixL4Checksum(p, info.length);  // the inner checksum may be partial
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
  if (!MakeTcpSuperPacket(p, n, traits_.resegmentAbove, &h)) return false;
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

bool Engine::SendOwn(const IpAddr& to, uint16_t port, const uint8_t* datagram, size_t n, size_t captureFrom) {
  sockaddr_storage ss;
  const socklen_t sl = ToSockaddr(to, port, &ss);
  const int fd = to.family == 4 ? udp_->fd4() : udp_->fd6();
  if (fd < 0 || sendto(fd, datagram, n, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&ss), sl) < 0) {
    CountDrop(kDropSocketSendError, CaptureDir::kTx, datagram + captureFrom, n - captureFrom, {&to});
    return false;
  }
  return true;
}

int Engine::TickTimeoutMs() const {
  if (tickRequested_.load(std::memory_order_relaxed)) return 0;
  const int64_t next = encap_->NextTickNs();
  if (next == Encapsulation::kNever) return -1;  // flannel-udp, VXLAN: sleep until there is work
  const int64_t left = next - MonoNs();
  return left <= 0 ? 0 : static_cast<int>(std::min<int64_t>((left + 999999) / 1000000, 1 << 30));
}

void Engine::MaybeTick() {
  const bool asked = tickRequested_.load(std::memory_order_relaxed) && tickRequested_.exchange(false);
  const int64_t next = encap_->NextTickNs();
  if (!asked && next == Encapsulation::kNever) return;
  const int64_t now = MonoNs();
  if (!asked && now < next) return;
  std::lock_guard<std::mutex> lock(txMu_);
  encap_->Tick(now, *this);
}

void Engine::RequestTick() {
  tickRequested_.store(true);
  // Whichever thread owns the TUN side ticks; a mode switch in between wakes the new owner anyway.
  SignalEventFd(split_.load() ? txWakeFd_ : rxWakeFd_);
}

bool Engine::KnownPeer(const IpAddr& outer) const {
  if (allowUnknownSource_) return true;
  const RouteTable* t = table_.load();  // called from a worker inside its online section
  return t && t->IsPeerAddress(outer);
}

}  // namespace flannelts
