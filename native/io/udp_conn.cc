// Underlay sockets. Non-blocking: workers poll() and then drain with recvmmsg/sendmmsg.
#include "io/udp_conn.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <netinet/udp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/errors.h"

namespace flannelts {

namespace {

void SetBuffers(int fd, int bytes) {
  // SO_*BUFFORCE ignores rmem_max/wmem_max with CAP_NET_ADMIN; without it fall back to the capped
  // option. A small buffer only costs drops under load, so failures here are not fatal.
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof bytes) < 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bytes, sizeof bytes) < 0)
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes);
}

int OpenBound(int family, const std::string& addr, uint16_t port, int bufferBytes) {
  const std::string what = std::string("UDP ") + (family == AF_INET6 ? "[" + addr + "]" : addr) + ":" + std::to_string(port);
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (family == AF_INET) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    if (inet_pton(AF_INET, addr.c_str(), &sin->sin_addr) != 1) throw SysError("bind " + what, EINVAL, "not an IPv4 address");
    len = sizeof *sin;
  } else {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    if (inet_pton(AF_INET6, addr.c_str(), &sin6->sin6_addr) != 1) throw SysError("bind " + what, EINVAL, "not an IPv6 address");
    len = sizeof *sin6;
  }
  const int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw SysError("socket " + what, errno);
  if (family == AF_INET6) {
    // v4 peers go through the v4 socket; no v4-mapped sources on this one.
    const int one = 1;
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  }
  SetBuffers(fd, bufferBytes);
  if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) < 0) {
    const int err = errno;
    ::close(fd);
    throw SysError("bind " + what, err);
  }
  return fd;
}

uint16_t BoundPort(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) < 0) return 0;
  return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);  // port is at the same offset for v6
}

// The bound address of fd as text (for the send-only sockets beside an adopted one).
std::string BoundAddress(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  char buf[INET6_ADDRSTRLEN] = {};
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) < 0) return "";
  if (ss.ss_family == AF_INET) inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in&>(ss).sin_addr, buf, sizeof buf);
  else inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6&>(ss).sin6_addr, buf, sizeof buf);
  return buf;
}

// A duplicate of a bound, non-blocking UDP socket of the family the caller says it is.
int Adopt(int fd, int family) {
  const std::string what = "adopt UDP socket fd " + std::to_string(fd);
  int type = 0, domain = 0;
  socklen_t len = sizeof type;
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0) throw SysError(what, errno);
  len = sizeof domain;
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0) throw SysError(what, errno);
  if (type != SOCK_DGRAM || domain != family) throw SysError(what, EINVAL, family == AF_INET ? "not an IPv4 UDP socket" : "not an IPv6 UDP socket");
  const int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || !(flags & O_NONBLOCK)) throw SysError(what, EINVAL, "must be non-blocking");
  const int dup = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (dup < 0) throw SysError(what, errno);
  return dup;
}

// A socket that only sends must not queue what others send to its port: a one-instruction classic BPF
// program ("return 0") drops every datagram before it is queued.
void DropAllReceived(int fd) {
  sock_filter ret0[1] = {BPF_STMT(BPF_RET | BPF_K, 0)};
  sock_fprog prog{1, ret0};
  setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog);
}

}  // namespace

UdpConn::UdpConn(const UdpOptions& o) {
  std::string bind4 = o.bindV4.empty() ? "0.0.0.0" : o.bindV4, bind6 = o.bindV6;
  if (o.adoptFd4 >= 0) {
    fd4_ = Adopt(o.adoptFd4, AF_INET);
    bind4 = BoundAddress(fd4_);
  } else {
    fd4_ = OpenBound(AF_INET, bind4, o.port, o.bufferBytes);
  }
  port_ = BoundPort(fd4_);
  try {
    if (o.adoptFd4 >= 0 && o.adoptFd6 >= 0) {
      fd6_ = Adopt(o.adoptFd6, AF_INET6);
      bind6 = BoundAddress(fd6_);
    } else if (o.adoptFd4 < 0 && !bind6.empty()) {
      // Port 0 asks for an ephemeral port: use the v4 one so both families share it.
      fd6_ = OpenBound(AF_INET6, bind6, port_, o.bufferBytes);
    }
  } catch (...) {
    Close();
    throw;
  }
  try {
    if (o.alsoPortV6 != 0 && o.alsoPortV6 != port_) {
      if (bind6.empty()) throw SysError("bind UDP [::]:" + std::to_string(o.alsoPortV6), EINVAL, "alsoPortV6 needs an IPv6 socket");
      fdAlso6_ = OpenBound(AF_INET6, bind6, o.alsoPortV6, o.bufferBytes);
    }
    for (int i = 0; i < o.sendSockets; i++) {
      pool4_.push_back(OpenBound(AF_INET, bind4, 0, o.bufferBytes));
      DropAllReceived(pool4_.back());
      if (fd6_ >= 0) {
        pool6_.push_back(OpenBound(AF_INET6, bind6, 0, o.bufferBytes));
        DropAllReceived(pool6_.back());
      }
    }
  } catch (...) {
    Close();
    throw;
  }
  ProbeOffloads(o);
}

// UDP_SEGMENT is only used per sendmsg (cmsg), so probing is asking whether the option exists;
// the send path still falls back if a GSO send later fails (EIO: no checksum offload on the route).
// UDP_GRO must be on for every socket we read, or a v6 datagram batch would arrive coalesced on
// one socket and not the other; both or neither.
void UdpConn::ProbeOffloads(const UdpOptions& o) {
  if (o.gso) {
    int v = 0;
    socklen_t len = sizeof v;
    gso_ = getsockopt(fd4_, SOL_UDP, UDP_SEGMENT, &v, &len) == 0;
    if (!gso_) notes_ += std::string("udpGso: UDP_SEGMENT unsupported (") + ErrnoName(errno) + "); ";
  }
  if (o.gro) {
    const int one = 1, zero = 0;
    gro_ = setsockopt(fd4_, SOL_UDP, UDP_GRO, &one, sizeof one) == 0;
    for (int fd : {fd6_, fdAlso6_}) {
      if (!gro_ || fd < 0 || setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof one) == 0) continue;
      for (int on : {fd4_, fd6_, fdAlso6_})
        if (on >= 0) setsockopt(on, SOL_UDP, UDP_GRO, &zero, sizeof zero);
      gro_ = false;
    }
    if (!gro_) notes_ += std::string("udpGro: UDP_GRO refused (") + ErrnoName(errno) + "); ";
  }
}

UdpConn::~UdpConn() { Close(); }

void UdpConn::Close() {
  if (fd4_ >= 0) ::close(fd4_);
  if (fd6_ >= 0) ::close(fd6_);
  if (fdAlso6_ >= 0) ::close(fdAlso6_);
  fd4_ = fd6_ = fdAlso6_ = -1;
  for (int fd : pool4_) ::close(fd);
  for (int fd : pool6_) ::close(fd);
  pool4_.clear();
  pool6_.clear();
}

}  // namespace flannelts
