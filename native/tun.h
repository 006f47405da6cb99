#pragma once
// The TUN device: open /dev/net/tun with IFF_TUN|IFF_NO_PI, non-blocking. Address, MTU, up state and
// routes are configured by the TypeScript netlink layer, not here.
#include <string>

namespace flannelts {

struct TunOptions {
  std::string name = "flannel%d";  // kernel replaces %d
  bool multiQueue = false;
  // IFF_VNET_HDR: every read/write carries a virtio_net_hdr (offload.h). Falls back to a plain TUN
  // when the kernel refuses it.
  bool vnetHdr = false;
  // TUNSETOFFLOAD with CSUM|TSO4|TSO6 (needs vnetHdr): the kernel hands us TCP super-packets.
  bool tso = false;
  // ... plus USO4|USO6 (UDP super-packets), where the kernel has them (6.2+).
  bool uso = false;
};

// The offloads already negotiated on a TUN fd opened elsewhere (the engine's test seam).
struct TunOffloads {
  bool vnetHdr = false, tso = false, uso = false;
};

class Tun {
 public:
  // Throws SysError, e.g. "open TUN flannel%d: EPERM (needs CAP_NET_ADMIN)".
  explicit Tun(const TunOptions& o);
  // Runs over an fd that is already open and configured (a TUN, or a test's socketpair end) with the
  // offloads negotiated on it; no ioctl, no name, ifindex 0. The fd is dup()ed: the caller keeps
  // its own fd and closes it; Close() closes only the duplicate. It must be non-blocking (workers
  // drain it until EAGAIN): a blocking fd is refused with EINVAL. Throws SysError.
  Tun(int fd, const TunOffloads& negotiated);
  ~Tun();
  Tun(const Tun&) = delete;
  Tun& operator=(const Tun&) = delete;

  int fd() const { return fd_; }
  const std::string& name() const { return name_; }
  int ifindex() const { return ifindex_; }
  bool vnetHdr() const { return vnetHdr_; }
  bool tso() const { return tso_; }
  bool uso() const { return uso_; }
  // Why a requested offload is off ("" when everything asked for is on), for the startup log.
  const std::string& notes() const { return notes_; }
  void Close();

 private:
  void ProbeOffload(bool uso);
  int fd_ = -1;
  std::string name_;
  int ifindex_ = 0;
  bool vnetHdr_ = false, tso_ = false, uso_ = false;
  std::string notes_;
};

}  // namespace flannelts
