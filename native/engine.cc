// Engine worker threads. The packet path: poll -> drain up to kBatch -> classify, route, TTL ->
// sendmmsg / write. Counters are atomics updated once per packet (totals once per batch).
#include "engine.h"

#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "encap.h"
#include "syserr.h"

namespace flannelts {

const char* DropName(int d) {
  static const char* const names[kDropCount] = {
      "no_route",          "ttl_expired",       "malformed",          "spoofed_source",    "unknown_peer",
      "tun_write_error",   "tun_read_error",    "socket_send_error",  "socket_recv_error",
  };
  return d >= 0 && d < kDropCount ? names[d] : "unknown";
}

// Packet slots for one batch; left uninitialised (8 MiB) so starting an engine does not touch it all.
struct Slots {
  std::unique_ptr<uint8_t[]> mem{new uint8_t[static_cast<size_t>(kBatch) * kMaxPacket]};
  uint8_t* data() { return mem.get(); }
};

// Per-thread buffers, allocated once when the thread starts.
struct TxScratch {
  Slots buf;
  uint8_t icmp[kIcmpMaxLen];
  // Separate send lists per family: v4 peers go out of the v4 socket, v6 peers out of the v6 one.
  struct List {
    mmsghdr msgs[kBatch];
    iovec iov[kBatch];
    sockaddr_storage addr[kBatch];
    PeerCounters* peer[kBatch];
    int n = 0;
  } v4, v6;
  uint64_t packets = 0, bytes = 0;
};

struct RxScratch {
  Slots buf;
  mmsghdr msgs[kBatch];
  iovec iov[kBatch];
  sockaddr_storage addr[kBatch];
  uint64_t packets = 0, bytes = 0;
};

Engine::Engine(const EngineOptions& o) : allowUnknownSource_(o.allowUnknownSource) {
  tun_ = std::make_unique<Tun>(o.tun);
  udp_ = std::make_unique<UdpConn>(o.udp);  // on throw, tun_ is closed by its destructor
  stopFd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (stopFd_ < 0) throw SysError("eventfd for engine " + tun_->name(), errno);
  tunName_ = tun_->name();
  tunIndex_ = tun_->ifindex();
  port_ = udp_->port();
  qsbr_.Register(&txReader_);
  qsbr_.Register(&rxReader_);
}

Engine::~Engine() { Close(); }

void Engine::SetPeers(const std::vector<RouteSpec>& specs) {
  std::lock_guard<std::mutex> lock(ctl_);
  if (closed_) throw std::runtime_error("engine " + tunName_ + " is closed");
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
  tx_ = std::thread([this] { TunToUdp(); });
  rx_ = std::thread([this] { UdpToTun(); });
  pthread_setname_np(tx_.native_handle(), "flannelts-tx");
  pthread_setname_np(rx_.native_handle(), "flannelts-rx");
}

void Engine::Close() {
  std::lock_guard<std::mutex> lock(ctl_);
  if (closed_) return;
  closed_ = true;
  stop_.store(true);
  if (stopFd_ >= 0) {
    // The eventfd stays readable (never read back), so every poll() in both threads returns.
    const uint64_t one = 1;
    ssize_t ignored = write(stopFd_, &one, sizeof one);
    (void)ignored;
  }
  if (tx_.joinable()) tx_.join();
  if (rx_.joinable()) rx_.join();
  if (tun_) tun_->Close();
  if (udp_) udp_->Close();
  if (stopFd_ >= 0) ::close(stopFd_);
  stopFd_ = -1;
  delete table_.exchange(nullptr);  // threads are gone: nobody can hold it
}

EngineStats Engine::Stats() {
  std::lock_guard<std::mutex> lock(ctl_);
  EngineStats s{};
  s.txPackets = tx_total_.packets.load(std::memory_order_relaxed);
  s.txBytes = tx_total_.bytes.load(std::memory_order_relaxed);
  s.rxPackets = rx_total_.packets.load(std::memory_order_relaxed);
  s.rxBytes = rx_total_.bytes.load(std::memory_order_relaxed);
  for (int i = 0; i < kDropCount; i++) s.drops[i] = drops_[i].load(std::memory_order_relaxed);
  // Only the control thread swaps or frees tables, and it holds ctl_, so this pointer is stable.
  if (const RouteTable* t = table_.load()) {
    for (const RouteEntry& e : t->entries()) {
      s.peers.push_back(PeerStats{FormatPrefix(e.subnet), FormatIp(e.publicIp), e.port,
                                  e.counters->txPackets.load(std::memory_order_relaxed),
                                  e.counters->txBytes.load(std::memory_order_relaxed),
                                  e.counters->rxPackets.load(std::memory_order_relaxed),
                                  e.counters->rxBytes.load(std::memory_order_relaxed)});
    }
  }
  return s;
}

// ---- TUN -> UDP ----

void Engine::TunToUdp() {
  TxScratch s;
  const int tunFd = tun_->fd(), fd4 = udp_->fd4(), fd6 = udp_->fd6();
  pollfd fds[2] = {{tunFd, POLLIN, 0}, {stopFd_, POLLIN, 0}};
  while (!stop_.load(std::memory_order_relaxed)) {
    qsbr_.Offline(&txReader_);  // blocked in poll: holds no table
    const int r = poll(fds, 2, -1);
    qsbr_.Quiescent(&txReader_);
    if (r < 0 && errno != EINTR) break;  // only EFAULT/EINVAL/ENOMEM: nothing sane to retry
    if (fds[1].revents) break;
    if (fds[0].revents & (POLLERR | POLLHUP | POLLNVAL)) {
      drops_[kDropTunReadError].fetch_add(1, std::memory_order_relaxed);
      break;
    }
    if (fds[0].revents & POLLIN) HandleTunBatch(tunFd, fd4, fd6, s);
  }
  qsbr_.Offline(&txReader_);
}

void Engine::HandleTunBatch(int tunFd, int fd4, int fd6, TxScratch& s) {
  const RouteTable* t = table_.load();
  s.v4.n = s.v6.n = 0;
  for (int i = 0; i < kBatch; i++) {
    uint8_t* p = s.buf.data() + static_cast<size_t>(i) * kMaxPacket;
    const ssize_t len = read(tunFd, p, kMaxPacket);
    if (len < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) drops_[kDropTunReadError].fetch_add(1, std::memory_order_relaxed);
      break;
    }
    const PacketInfo info = ClassifyPacket(p, static_cast<size_t>(len));
    if (info.cls != PacketClass::kIPv4 && info.cls != PacketClass::kIPv6) {
      drops_[kDropMalformed].fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    const RouteEntry* e = t ? t->Lookup(info.dst) : nullptr;
    if (!e) {
      // As flannel does: tell the local sender, through the TUN, that the network is unreachable.
      drops_[kDropNoRoute].fetch_add(1, std::memory_order_relaxed);
      const size_t n = BuildIcmpUnreachable(p, info.length, info.cls, s.icmp, sizeof s.icmp);
      if (n && write(tunFd, s.icmp, n) < 0) drops_[kDropTunWriteError].fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    if (DecrementTtl(p, info.length, info.cls) == TtlResult::kExpired) {
      drops_[kDropTtlExpired].fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    TxScratch::List& l = e->publicIp.family == 4 ? s.v4 : s.v6;
    if ((e->publicIp.family == 4 ? fd4 : fd6) < 0) {
      drops_[kDropSocketSendError].fetch_add(1, std::memory_order_relaxed);  // no IPv6 socket bound
      continue;
    }
    // Copy the address: the send may outlive a table swap if we ever wait for POLLOUT offline.
    std::memcpy(&l.addr[l.n], &e->sa, e->saLen);
    l.iov[l.n] = iovec{p, info.length};
    l.msgs[l.n].msg_hdr = msghdr{&l.addr[l.n], e->saLen, &l.iov[l.n], 1, nullptr, 0, 0};
    l.peer[l.n] = e->counters.get();
    l.n++;
  }
  s.packets = s.bytes = 0;
  if (s.v4.n) SendAll(fd4, s, 4);
  if (s.v6.n) SendAll(fd6, s, 6);
  if (s.packets) {
    tx_total_.packets.fetch_add(s.packets, std::memory_order_relaxed);
    tx_total_.bytes.fetch_add(s.bytes, std::memory_order_relaxed);
  }
}

void Engine::SendAll(int fd, TxScratch& s, int family) {
  TxScratch::List& l = family == 4 ? s.v4 : s.v6;
  int off = 0, waits = 0;
  while (off < l.n) {
    const int r = sendmmsg(fd, l.msgs + off, static_cast<unsigned>(l.n - off), 0);
    if (r > 0) {
      for (int i = off; i < off + r; i++) {
        const uint64_t len = l.iov[i].iov_len;
        l.peer[i]->txPackets.fetch_add(1, std::memory_order_relaxed);
        l.peer[i]->txBytes.fetch_add(len, std::memory_order_relaxed);
        s.packets++;
        s.bytes += len;
      }
      off += r;
      continue;
    }
    if (errno == EINTR) continue;
    if ((errno == EAGAIN || errno == ENOBUFS) && waits < 100 && !stop_.load(std::memory_order_relaxed)) {
      // Socket buffer full: wait for room (or stop) for at most ~1 s per batch, then drop.
      waits++;
      pollfd fds[2] = {{fd, POLLOUT, 0}, {stopFd_, POLLIN, 0}};
      poll(fds, 2, 10);
      continue;
    }
    // The datagram at `off` failed (e.g. ECONNREFUSED from an earlier ICMP, EHOSTUNREACH): count
    // it and go on with the rest; after too many waits, drop what is left.
    const int dropped = (errno == EAGAIN || errno == ENOBUFS) ? l.n - off : 1;
    drops_[kDropSocketSendError].fetch_add(static_cast<uint64_t>(dropped), std::memory_order_relaxed);
    off += dropped;
  }
}

// ---- UDP -> TUN ----

void Engine::UdpToTun() {
  RxScratch s;
  const int tunFd = tun_->fd(), fd4 = udp_->fd4(), fd6 = udp_->fd6();
  pollfd fds[3] = {{stopFd_, POLLIN, 0}, {fd4, POLLIN, 0}, {fd6, POLLIN, 0}};  // fd -1 is ignored
  while (!stop_.load(std::memory_order_relaxed)) {
    qsbr_.Offline(&rxReader_);
    const int r = poll(fds, 3, -1);
    qsbr_.Quiescent(&rxReader_);
    if (r < 0 && errno != EINTR) break;
    if (fds[0].revents) break;
    for (int i = 1; i <= 2; i++) {
      if (fds[i].revents & POLLERR) {
        // A pending socket error (only with IP_RECVERR or a connected socket, neither used today)
        // would keep poll() returning at once: read it to clear it, count it, carry on.
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(fds[i].fd, SOL_SOCKET, SO_ERROR, &err, &len);
        drops_[kDropSocketRecvError].fetch_add(1, std::memory_order_relaxed);
      }
      if (fds[i].revents & POLLIN) HandleUdpBatch(fds[i].fd, tunFd, s);
      qsbr_.Quiescent(&rxReader_);
    }
  }
  qsbr_.Offline(&rxReader_);
}

namespace {
IpAddr FromSockaddr(const sockaddr_storage& ss) {
  IpAddr a;
  if (ss.ss_family == AF_INET) {
    a.family = 4;
    std::memcpy(a.bytes, &reinterpret_cast<const sockaddr_in&>(ss).sin_addr, 4);
  } else if (ss.ss_family == AF_INET6) {
    a.family = 6;
    std::memcpy(a.bytes, &reinterpret_cast<const sockaddr_in6&>(ss).sin6_addr, 16);
  }
  return a;
}
}  // namespace

void Engine::HandleUdpBatch(int sock, int tunFd, RxScratch& s) {
  for (int i = 0; i < kBatch; i++) {
    s.iov[i] = iovec{s.buf.data() + static_cast<size_t>(i) * kMaxPacket, kMaxPacket};
    s.msgs[i].msg_hdr = msghdr{&s.addr[i], sizeof s.addr[i], &s.iov[i], 1, nullptr, 0, 0};
    s.msgs[i].msg_len = 0;
  }
  const int n = recvmmsg(sock, s.msgs, kBatch, MSG_DONTWAIT, nullptr);
  if (n < 0) {
    if (errno != EAGAIN && errno != EINTR) drops_[kDropSocketRecvError].fetch_add(1, std::memory_order_relaxed);
    return;
  }
  const RouteTable* t = table_.load();
  s.packets = s.bytes = 0;
  for (int i = 0; i < n; i++) {
    uint8_t* p = static_cast<uint8_t*>(s.iov[i].iov_base);
    const size_t len = s.msgs[i].msg_len;
    const PacketInfo info = ClassifyPacket(p, len);
    if ((s.msgs[i].msg_hdr.msg_flags & MSG_TRUNC) || (info.cls != PacketClass::kIPv4 && info.cls != PacketClass::kIPv6)) {
      drops_[kDropMalformed].fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    // flannel accepts anything; we require the datagram to come from a peer, carrying traffic from
    // that peer's subnet, so an underlay host cannot inject packets with pod source addresses.
    const IpAddr outer = FromSockaddr(s.addr[i]);
    if (!allowUnknownSource_ && !(t && t->IsPeerAddress(outer))) {
      drops_[kDropUnknownPeer].fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    const RouteEntry* e = t ? t->Lookup(info.src) : nullptr;
    if (!e || (!allowUnknownSource_ && !(e->publicIp == outer))) {
      drops_[kDropSpoofedSource].fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    if (DecrementTtl(p, info.length, info.cls) == TtlResult::kExpired) {
      drops_[kDropTtlExpired].fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    if (write(tunFd, p, info.length) < 0) {
      drops_[kDropTunWriteError].fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    e->counters->rxPackets.fetch_add(1, std::memory_order_relaxed);
    e->counters->rxBytes.fetch_add(info.length, std::memory_order_relaxed);
    s.packets++;
    s.bytes += info.length;
  }
  if (s.packets) {
    rx_total_.packets.fetch_add(s.packets, std::memory_order_relaxed);
    rx_total_.bytes.fetch_add(s.bytes, std::memory_order_relaxed);
  }
}

}  // namespace flannelts
