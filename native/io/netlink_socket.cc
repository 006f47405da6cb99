// The raw netlink socket's fd and subscription thread; see netlink_socket.h.
#include "io/netlink_socket.h"

#include <linux/netlink.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "io/event_fd.h"

namespace flannelts {

NetlinkSocket::NetlinkSocket(int protocol, uint32_t groups) {
  fd_ = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
  if (fd_ < 0) throw NetlinkError("socket", errno);
  // Dumps of big tables and bursts of notifications arrive faster than JS drains them; a larger
  // receive buffer avoids ENOBUFS. SO_RCVBUFFORCE (root) passes net.core.rmem_max, else best effort.
  int rcvbuf = 1 << 20;
  if (setsockopt(fd_, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0) setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  // Extended ACKs give the kernel's reason string; harmless where unsupported, so errors are ignored.
  int one = 1;
  setsockopt(fd_, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
  sockaddr_nl sa{};
  sa.nl_family = AF_NETLINK;
  sa.nl_groups = groups;
  const char* op = nullptr;
  if (bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) < 0) op = "bind";
  socklen_t len = sizeof(sa);
  if (!op && getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len) < 0) op = "getsockname";
  if (op) {
    const int e = errno;
    ::close(fd_);
    fd_ = -1;
    throw NetlinkError(op, e);
  }
  pid_ = sa.nl_pid;
  buf_.resize(64 * 1024);
}

NetlinkSocket::~NetlinkSocket() { Close(); }

void NetlinkSocket::Send(const uint8_t* p, size_t n) {
  if (fd_ < 0) throw NetlinkError("send", EBADF);
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;  // nl_pid 0 addresses the kernel
  for (;;) {
    const ssize_t sent = sendto(fd_, p, n, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof(kernel));
    if (sent >= 0) {
      if (static_cast<size_t>(sent) != n) throw NetlinkError("send (short write)", EMSGSIZE);
      return;
    }
    if (errno == EINTR) continue;
    throw NetlinkError("send", errno);
  }
}

std::optional<std::vector<uint8_t>> NetlinkSocket::Recv(int timeoutMs) {
  if (fd_ < 0) throw NetlinkError("recv", EBADF);
  // The subscription thread owns reads; a second reader would steal its datagrams.
  if (thread_.joinable()) throw NetlinkError("recv (socket is subscribed)", EBUSY);
  pollfd p{fd_, POLLIN, 0};
  for (;;) {
    const int r = poll(&p, 1, timeoutMs);
    if (r > 0) break;
    if (r == 0) return std::nullopt;
    if (errno == EINTR) continue;
    throw NetlinkError("poll", errno);
  }
  for (;;) {
    // MSG_PEEK|MSG_TRUNC reports the real datagram size, so a reply bigger than our buffer grows it
    // instead of being silently cut (a cut dump would decode as malformed).
    const ssize_t need = recv(fd_, buf_.data(), buf_.size(), MSG_PEEK | MSG_TRUNC);
    if (need < 0) {
      if (errno == EINTR) continue;
      throw NetlinkError("recv", errno);
    }
    if (static_cast<size_t>(need) > buf_.size()) buf_.resize(static_cast<size_t>(need));
    sockaddr_nl from{};
    socklen_t fromlen = sizeof(from);
    const ssize_t n = recvfrom(fd_, buf_.data(), buf_.size(), 0, reinterpret_cast<sockaddr*>(&from), &fromlen);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw NetlinkError("recv", errno);
    }
    return std::vector<uint8_t>(buf_.begin(), buf_.begin() + n);
  }
}

void NetlinkSocket::Subscribe(Sink sink, std::function<void()> done) {
  if (fd_ < 0) throw NetlinkError("subscribe", EBADF);
  if (thread_.joinable()) throw NetlinkError("subscribe (already subscribed)", EBUSY);
  stopFd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stopFd_ < 0) throw NetlinkError("eventfd", errno);
  thread_ = std::thread([this, sink = std::move(sink), done = std::move(done)] {
    ReadLoop(sink);
    done();
  });
}

void NetlinkSocket::ReadLoop(const Sink& sink) {
  std::vector<uint8_t> buf(64 * 1024);
  pollfd fds[2] = {{fd_, POLLIN, 0}, {stopFd_, POLLIN, 0}};
  for (;;) {
    const int r = poll(fds, 2, -1);
    if (r < 0) {
      if (errno == EINTR) continue;
      sink({}, errno);
      return;
    }
    if (fds[1].revents) return;
    if (!(fds[0].revents & (POLLIN | POLLERR))) continue;
    const ssize_t need = recv(fd_, buf.data(), buf.size(), MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT);
    if (need > 0 && static_cast<size_t>(need) > buf.size()) buf.resize(static_cast<size_t>(need));
    const ssize_t n = recv(fd_, buf.data(), buf.size(), MSG_DONTWAIT);
    if (n < 0) {
      const int e = errno;
      if (e == EINTR || e == EAGAIN) continue;
      // ENOBUFS: the kernel dropped notifications; report it (callers re-list) and keep reading.
      sink({}, e);
      if (e == ENOBUFS) continue;
      return;
    }
    sink(std::vector<uint8_t>(buf.begin(), buf.begin() + n), 0);
  }
}

void NetlinkSocket::Unsubscribe() {
  if (!thread_.joinable()) return;
  SignalEventFd(stopFd_);
  thread_.join();
  ::close(stopFd_);
  stopFd_ = -1;
}

void NetlinkSocket::Close() {
  Unsubscribe();
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

}  // namespace flannelts
