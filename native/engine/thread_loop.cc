// The data threads: what they sleep on, who reads the TUN (thread_mode.h decides one thread or two),
// reply polling after small sends (reply_poll.h), and the encapsulation's timer tick.
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

#include "base/clock.h"
#include "engine/scratch.h"
#include "io/event_fd.h"

namespace flannelts {

namespace {
// A thread's CPU time; 0 when Start could not get its clock (the mode then stays at one thread).
int64_t ThreadCpuNs(clockid_t c) { return c == clockid_t{} ? 0 : ClockNs(c); }
}  // namespace

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

void Engine::UdpToTun() {
  const int tunFd = tun_->fd(), fd4 = udp_->fd4(), fd6 = udp_->fd6(), fdAlso6 = udp_->fdAlso6();
  std::unique_ptr<RxScratch> s = NewRxScratch(kRxBatch);
  // TUN reads in this thread (both directions on one thread, and PollAfterWork) have their own TX buffers.
  std::unique_ptr<TxScratch> inlineTx(new TxScratch(this));
  ReplyPollWindow window(replyPollUs_);
  // fd -1 is ignored: the IPv6 socket(s) when there are none, the TUN while the directions are split.
  pollfd fds[6] = {{stopFd_, POLLIN, 0}, {fd4, POLLIN, 0}, {fd6, POLLIN, 0}, {-1, POLLIN, 0}, {rxWakeFd_, POLLIN, 0}, {fdAlso6, POLLIN, 0}};
  while (!stop_.load(std::memory_order_relaxed)) {
    const bool ownsTun = !split_.load(std::memory_order_relaxed);
    fds[3].fd = ownsTun ? tunFd : -1;
    qsbr_.Offline(&rxReader_);
    rxAwake_.store(false, std::memory_order_relaxed);
    const int r = poll(fds, 6, ownsTun ? TickTimeoutMs() : -1);
    rxAwake_.store(true, std::memory_order_relaxed);
    qsbr_.Quiescent(&rxReader_);
    if (r < 0 && errno != EINTR) break;
    if (fds[0].revents) break;
    if (fds[4].revents & POLLIN) DrainEventFd(rxWakeFd_);
    uint64_t handled = 0;
    for (int i : {1, 2, 5}) {
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
      HandleUdpBatch(fds[i].fd, *s);
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

void Engine::TunSide(Qsbr::Reader* me, TxScratch& tx, std::unique_ptr<RxScratch>& rx, ReplyPollWindow& window, bool forTx) {
  {
    std::lock_guard<std::mutex> lock(txMu_);
    HandleTunBatch(udp_->fd4(), udp_->fd6(), tx);
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
  if (!rx) rx = NewRxScratch(kReplyPollRxBatch);
  // An answer counts whichever thread handled it (the RX thread, woken for the same datagram, may win
  // the race for it): polling still pays off while answers come this soon.
  const uint64_t rxBefore = rx_total_.packets.load(std::memory_order_relaxed);
  PollAfterWork(me, tunFd, udp_->fd4(), udp_->fd6(), tx, *rx, w, forTx);
  const bool hit = rx_total_.packets.load(std::memory_order_relaxed) != rxBefore;
  window.Done(hit);
  (hit ? replyPollHits_ : replyPollMisses_).fetch_add(1, std::memory_order_relaxed);
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
        HandleTunBatch(fd4, fd6, tx);
        txMu_.unlock();
      }
      for (int i = 1; i <= 2; i++) {
        if (!(fds[i].revents & POLLIN) || !rxMu_.try_lock()) continue;
        HandleUdpBatch(fds[i].fd, rx);
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

}  // namespace flannelts
