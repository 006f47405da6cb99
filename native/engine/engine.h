#pragma once
// The data-plane engine: owns the TUN device, the underlay sockets and the wire format, and runs its
// own threads (engine/thread_loop.cc): one carries both directions, a second takes the TUN side while
// both are busy. JavaScript pushes whole route tables down and reads counters on demand; nothing calls
// into JavaScript per packet and the libuv threadpool is never used.
//
// The packet's way: engine/tx_path.cc (TUN -> wire) and engine/rx_path.cc (wire -> TUN); the control
// calls in engine.cc, stats in stats.cc, the capture hook in capture_hook.cc.
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "base/drop_reasons.h"
#include "encap/encapsulation.h"
#include "engine/capture_ring.h"
#include "engine/options.h"
#include "engine/qsbr.h"
#include "engine/reply_poll.h"
#include "routes/routes.h"
#include "engine/stats.h"
#include "engine/thread_mode.h"
#include "io/tun_device.h"
#include "io/udp_conn.h"

namespace flannelts {

struct TxScratch;
struct RxScratch;

struct alignas(64) DirCounters {
  std::atomic<uint64_t> packets{0}, bytes{0};
};

class Engine : private EncapHost {
 public:
  // Opens the TUN (or adopts EngineOptions::tunFd), binds (or adopts) the sockets and builds the
  // engine on them. Throws SysError, e.g. "open TUN flannel%d: EPERM (needs CAP_NET_ADMIN)".
  static std::unique_ptr<Engine> Open(const EngineOptions& o);
  // On devices already open: the TUN with its negotiated offloads, the sockets. Makes the wire format
  // (c.encap, flannel-udp when empty) and the eventfds. Throws SysError.
  Engine(const EngineConfig& c, std::unique_ptr<TunDevice> tun, std::unique_ptr<UdpConn> udp);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Builds a new table and swaps it in; waits (briefly, lock-free for readers) until no worker can
  // still see the old one, then frees it. Throws std::invalid_argument on a bad entry.
  void SetPeers(const std::vector<RouteSpec>& specs);
  void Start();
  // Wakes the threads via the eventfd, joins them, closes every fd. Idempotent.
  void Close();
  EngineStats Stats();

  // Capture (flannelctl capture). One at a time: StartCapture throws std::runtime_error while one
  // runs. ReadCapture hands the records gathered so far to fn (returns false when none runs);
  // StopCapture hands over the last ones, unpublishes the ring, waits until no worker can hold it
  // and frees it. Control thread only, like SetPeers.
  using CaptureSink = std::function<void(const uint8_t*, size_t)>;
  void StartCapture(const CaptureFilter& f);
  CaptureCounters ReadCapture(const CaptureSink& fn);
  CaptureCounters StopCapture(const CaptureSink& fn);

  // Worker side (public for the scratch structs). CountDrop counts n dropped packets and, while
  // a capture runs, offers the packet with its reason. Off, a capture tap is one relaxed load.
  void CountDrop(int reason, CaptureDir dir, const uint8_t* p = nullptr, size_t len = 0, const CapturePeer& peer = {}, uint64_t n = 1) {
    drops_[reason].fetch_add(n, std::memory_order_relaxed);
    Tap(dir, static_cast<uint8_t>(reason), p, len, peer);
  }
  void Tap(CaptureDir dir, uint8_t reason, const uint8_t* p, size_t len, const CapturePeer& peer) {
    if (__builtin_expect(capture_.load(std::memory_order_relaxed) != nullptr, 0)) TapSlow(dir, reason, p, len, peer);
  }

  // TX flush reports (TxScratch): a UDP_SEGMENT send; EIO turned UDP_SEGMENT off.
  void CountGsoSend() { udpGsoSends_.fetch_add(1, std::memory_order_relaxed); }
  void NoteGsoDisabled();
  // TUN write reports (RxScratch): a super-packet of `segments` written; a write the TUN refused,
  // whose packets HandleDatagram had already counted as received (rx_path.cc).
  void CountCoalesced(size_t segments) {
    groPackets_.fetch_add(1, std::memory_order_relaxed);
    groSegments_.fetch_add(segments, std::memory_order_relaxed);
  }
  void TunWriteFailed(RxScratch& s, const uint8_t* pkt, size_t len, size_t segments);

  const std::string& tunName() const { return tunName_; }
  int tunIndex() const { return tunIndex_; }
  uint16_t port() const { return port_; }

 private:
  void TunToUdp();
  void UdpToTun();
  // One batch (up to kTunBatch TUN reads, or one recvmmsg) per call; per-thread buffers live in the scratch structs.
  void HandleTunBatch(int fd4, int fd6, TxScratch& s);
  void HandleUdpBatch(int sock, RxScratch& s);
  std::unique_ptr<RxScratch> NewRxScratch(int batch);
  // After a batch: polls every fd (once, or for up to windowUs, renewed by each answer from a socket)
  // and handles what turns up in this thread (thread_loop.cc).
  // forTx: the TX thread polling; it stops as soon as the RX thread is up (it takes its own answers).
  void PollAfterWork(Qsbr::Reader* me, int tunFd, int fd4, int fd6, TxScratch& tx, RxScratch& rx, int windowUs, bool forTx);
  // One TUN batch (under txMu_), then reply polling if it was a small send; in either thread.
  void TunSide(Qsbr::Reader* me, TxScratch& tx, std::unique_ptr<RxScratch>& rx, ReplyPollWindow& window, bool forTx);
  // After a TUN batch: reply polling when it was a small send (see PollAfterWork); rx is made on first use.
  void ReplyPollAfterSend(Qsbr::Reader* me, TxScratch& tx, std::unique_ptr<RxScratch>& rx, ReplyPollWindow& window, bool forTx);
  // Automatic thread mode: once a window, either thread may switch it (thread_mode.h).
  void MaybeSwitchMode();
  void HandleDatagram(uint8_t* p, size_t len, const IpAddr& outer, uint16_t outerPort, const RouteTable* t, RxScratch& s);
  // An inner TCP packet above the TUN MTU (EncapTraits::resegmentAbove) into the TUN as a TSO
  // super-packet (or, without a virtio header, as segments split here).
  enum class Oversized { kNo, kWritten, kRefused };  // kNo: not such a packet (written as is then)
  Oversized WriteOversized(uint8_t* p, size_t n, RxScratch& s);
  // Sends every pending run (io/udp_batch.h: UDP_SEGMENT groups while udpGso_ holds, else one datagram
  // per segment; EIO turns udpGso_ off for good) and empties the arena.
  void FlushTx(TxScratch& s);
  // The encapsulation's timers: the poll() timeout of the thread that owns the TUN side (-1: none due),
  // and the Tick when one is due or was asked for (under txMu_, like Seal).
  int TickTimeoutMs() const;
  void MaybeTick();
  // EncapHost: what the encapsulation may ask of the engine, from any thread.
  bool SendOwn(const IpAddr& to, uint16_t port, const uint8_t* datagram, size_t n, size_t captureFrom) override;
  bool KnownPeer(const IpAddr& outer) const override;
  uint16_t ListenPort() const override { return port_; }
  void RequestTick() override;
  void TapSlow(CaptureDir dir, uint8_t reason, const uint8_t* p, size_t len, const CapturePeer& peer);

  std::unique_ptr<TunDevice> tun_;
  std::unique_ptr<UdpConn> udp_;
  int stopFd_ = -1;
  std::string tunName_;
  int tunIndex_ = 0;
  uint16_t port_ = 0;
  const bool allowUnknownSource_;
  std::unique_ptr<Encapsulation> encap_;
  EncapTraits traits_;  // encap_->traits(), read once
  std::atomic<bool> tickRequested_{false};

  std::atomic<RouteTable*> table_{nullptr};
  Qsbr qsbr_;
  Qsbr::Reader txReader_, rxReader_;

  std::mutex ctl_;  // serializes control calls (JS thread vs. env cleanup hook)
  std::unordered_map<std::string, std::shared_ptr<PeerCounters>> counters_;
  std::unordered_map<std::string, std::shared_ptr<EncapPeer>> encapPeers_;  // by Encapsulation::PeerKey
  std::thread tx_, rx_;
  bool started_ = false, closed_ = false;
  std::atomic<bool> stop_{false};

  DirCounters tx_total_, rx_total_;
  std::atomic<uint64_t> drops_[kDropCount] = {};

  // Non-null only while a capture runs; published and retired under ctl_, freed after qsbr_ says no
  // worker can still use it (workers read it inside the same online sections as table_).
  std::atomic<CaptureRing*> capture_{nullptr};
  uint64_t captureLostDone_ = 0;  // lost records of finished captures (under ctl_)

  bool vnetHdr_ = false, tso_ = false, uso_ = false, udpGro_ = false;
  std::atomic<bool> udpGso_{false};
  // Serializes TUN reads between the TX thread and the RX thread's opportunistic drain (see UdpToTun).
  std::mutex txMu_;
  // Serializes socket reads between the RX thread and the TX thread's reply polling (see PollAfterWork).
  std::mutex rxMu_;
  const int replyPollUs_;
  // False while the RX thread sleeps in poll(). Reply polling only pays while it sleeps: an awake RX
  // thread reads the answer as soon as the TX thread would, and polling then only competes with it
  // for the sockets and the vCPU (a bulk receiver's TX thread, sending ACKs, used a third of a core
  // that way, 9 % without). Relaxed: a stale value costs one window or one missed shortcut, nothing else.
  std::atomic<bool> rxAwake_{false};
  // True while the last socket batch read held more than a reply's worth of datagrams: a stream is
  // arriving and the data thread keeps waking for it anyway. The sends that follow are its ACKs, and
  // polling for their "answer" (the next data) would only take the vCPU the stream's receiver needs,
  // whichever thread sends them (one data thread: 1,586 polls in a 5 s iperf3, now ~100). Kept until
  // a small batch arrives, so a wake-up that only found TUN work (a delayed ACK) does not reset it.
  std::atomic<bool> rxBulk_{false};
  // Thread mode. split_: the TX thread reads the TUN; otherwise the RX thread carries both directions
  // and the TX thread sleeps on txWakeFd_. The switch wakes the thread that takes the TUN over
  // (txWakeFd_ or rxWakeFd_), so neither sleeps in a poll() set that no longer fits the mode; TUN
  // reads stay serialized by txMu_, so a read in flight across a switch is harmless.
  const int dataThreads_;
  const ThreadModeDecider modeDecider_;
  std::atomic<bool> split_{false};
  int txWakeFd_ = -1, rxWakeFd_ = -1;
  std::atomic<int64_t> tunBusyNs_{0}, sockBusyNs_{0};  // time inside TUN-side and socket-side batches
  std::atomic<clockid_t> txCpuClock_{}, rxCpuClock_{};  // the threads' CPU clocks (set in Start; 0 until then)
  std::atomic<uint64_t> splits_{0}, merges_{0};
  std::atomic<int64_t> modeWindowStart_{0};
  std::mutex modeMu_;  // one evaluator at a time (try_lock); guards the three bases below
  int64_t modeTunBase_ = 0, modeSockBase_ = 0, modeCpuBase_ = 0;
  std::atomic<uint64_t> replyPollHits_{0}, replyPollMisses_{0}, replyPollSkipped_{0};
  std::mutex notesMu_;  // not ctl_: Close() holds ctl_ while joining the thread that may append
  std::string offloadNotes_;
  std::atomic<uint64_t> gsoPackets_{0}, gsoSegments_{0}, udpGsoSends_{0}, groPackets_{0}, groSegments_{0}, udpGroBatches_{0};
};

}  // namespace flannelts
