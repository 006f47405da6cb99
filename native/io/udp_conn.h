#pragma once
// The underlay UDP sockets: IPv4 bound to the external address (always), IPv6 when a v6 bind
// address is given; the send-only sockets of the VXLAN VTEP. Batched I/O on them: io/udp_batch.h.
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <vector>

namespace flannelts {


struct UdpOptions {
  std::string bindV4 = "0.0.0.0";
  std::string bindV6;  // empty: no IPv6 socket
  uint16_t port = 8285;
  int bufferBytes = 8 << 20;  // SO_RCVBUF/SO_SNDBUF (FORCE variants tried first)
  bool gso = false;           // probe UDP_SEGMENT (sendmsg with a segment size cmsg)
  bool gro = false;           // enable UDP_GRO (recvmsg returns coalesced datagrams + their size)
  // Extra send-only sockets per family, each on its own ephemeral port: the userspace VXLAN VTEP
  // picks one per inner flow so the outer source port varies per flow like the kernel's vxlan.
  int sendSockets = 0;
  // Another IPv6 socket on this port (0: none), read like the first: the port a WireGuard lease
  // advertises for IPv6 (flannel's ListenPortV6) when the device listens on another one.
  uint16_t alsoPortV6 = 0;
  // Test seam: already bound sockets to use instead of binding bindV4/bindV6:port (fd6 -1: none).
  // Each is dup()ed: the caller keeps and closes its own fd; Close() closes only the duplicates. The
  // send-only sockets (sendSockets) bind to fd4's (fd6's) address. Offloads are probed on them as usual.
  int adoptFd4 = -1, adoptFd6 = -1;
};

class UdpConn {
 public:
  // Throws SysError naming the socket, e.g. "bind UDP 198.18.0.11:8285: EADDRINUSE (...)".
  explicit UdpConn(const UdpOptions& o);
  ~UdpConn();
  UdpConn(const UdpConn&) = delete;
  UdpConn& operator=(const UdpConn&) = delete;

  int fd4() const { return fd4_; }
  int fd6() const { return fd6_; }
  int fdAlso6() const { return fdAlso6_; }  // -1 without UdpOptions::alsoPortV6
  uint16_t port() const { return port_; }
  bool gso() const { return gso_; }
  bool gro() const { return gro_; }
  // Send-only sockets (see UdpOptions::sendSockets); empty when none were asked for.
  const std::vector<int>& pool4() const { return pool4_; }
  const std::vector<int>& pool6() const { return pool6_; }
  const std::string& notes() const { return notes_; }
  void Close();

 private:
  void ProbeOffloads(const UdpOptions& o);
  int fd4_ = -1, fd6_ = -1, fdAlso6_ = -1;
  std::vector<int> pool4_, pool6_;
  uint16_t port_ = 0;
  bool gso_ = false, gro_ = false;
  std::string notes_;
};

}  // namespace flannelts
