// The engine's life: open or adopt the devices, push peer tables, start, close; and what it does for
// its parts (the GRO writer's and the encapsulation's requests). The packet paths are tx_path.cc and
// rx_path.cc, the threads thread_loop.cc.
#include "engine/engine.h"

#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>

#include "base/clock.h"
#include "base/errors.h"
#include "encap/flannel_udp.h"
#include "io/event_fd.h"

namespace flannelts {

std::unique_ptr<Engine> Engine::Open(const EngineOptions& o) {
  // The USO -> TSO -> none probe and every ioctl stay in the TUN's open path; an adopted fd brings
  // its offloads along. On a throw below, what was opened closes with its unique_ptr.
  std::unique_ptr<TunDevice> tun = o.tunFd >= 0 ? TunDevice::Adopt(o.tunFd, o.tunOffloads) : TunDevice::Open(o.tun);
  auto udp = std::make_unique<UdpConn>(o.udp);
  return std::make_unique<Engine>(o.engine, std::move(tun), std::move(udp));
}

Engine::Engine(const EngineConfig& c, std::unique_ptr<TunDevice> tun, std::unique_ptr<UdpConn> udp)
    : tun_(std::move(tun)), udp_(std::move(udp)), allowUnknownSource_(c.allowUnknownSource), replyPollUs_(c.replyPollUs > 0 ? c.replyPollUs : 0),
      dataThreads_(c.dataThreads == 1 || c.dataThreads == 2 ? c.dataThreads : 0), modeDecider_(c.splitAtPercent) {
  split_.store(dataThreads_ == 2);
  encap_ = c.encap ? c.encap(*udp_) : MakeFlannelUdp();
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
  encap_->Start(*this);
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
  encap_->Stop();  // its own threads may still send from the sockets
  if (tun_) tun_->Close();
  if (udp_) udp_->Close();
  for (int* fd : {&stopFd_, &txWakeFd_, &rxWakeFd_}) {
    if (*fd >= 0) ::close(*fd);
    *fd = -1;
  }
  delete table_.exchange(nullptr);  // threads are gone: nobody can hold it
  delete capture_.exchange(nullptr);
}

void Engine::NoteGsoDisabled() {
  std::lock_guard<std::mutex> notes(notesMu_);
  offloadNotes_ += "udpGso: EIO from a UDP_SEGMENT send, disabled; ";
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

bool Engine::KnownPeer(const IpAddr& outer) const {
  if (allowUnknownSource_) return true;
  const RouteTable* t = table_.load();  // called from a worker inside its online section
  return t && t->IsPeerAddress(outer);
}

}  // namespace flannelts
