#pragma once
// The TUN device: open /dev/net/tun with IFF_TUN|IFF_NO_PI, non-blocking. Address, MTU, up state and
// routes are configured by the TypeScript netlink layer, not here.
#include <string>

namespace flannelts {

struct TunOptions {
  std::string name = "flannel%d";  // kernel replaces %d
  // Prepared for the offload work (virtio_net_hdr + TUNSETOFFLOAD); off until offload.* exists.
  bool multiQueue = false;
  bool vnetHdr = false;
};

class Tun {
 public:
  // Throws SysError, e.g. "open TUN flannel%d: EPERM (needs CAP_NET_ADMIN)".
  explicit Tun(const TunOptions& o);
  ~Tun();
  Tun(const Tun&) = delete;
  Tun& operator=(const Tun&) = delete;

  int fd() const { return fd_; }
  const std::string& name() const { return name_; }
  int ifindex() const { return ifindex_; }
  bool vnetHdr() const { return vnetHdr_; }
  void Close();

 private:
  int fd_ = -1;
  std::string name_;
  int ifindex_ = 0;
  bool vnetHdr_ = false;
};

}  // namespace flannelts
