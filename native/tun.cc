// TUN open. Non-blocking so a worker can drain a batch and return to poll() without a stuck read.
#include "tun.h"

#include <fcntl.h>
#include <net/if.h>  // before linux/if_tun.h: glibc and linux/if.h both define struct ifreq
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "syserr.h"

namespace flannelts {

namespace {
std::string Hint(int err) {
  switch (err) {
    case EPERM:
    case EACCES: return "needs CAP_NET_ADMIN";
    case ENOENT:
    case ENODEV: return "no /dev/net/tun; is the tun module loaded?";
    case EBUSY: return "device exists and is in use";
    case EINVAL: return "bad name or flags";
    default: return strerror(err);
  }
}
}  // namespace

Tun::Tun(const TunOptions& o) {
  const std::string what = "open TUN " + o.name;
  if (o.name.empty() || o.name.size() >= IFNAMSIZ) throw SysError(what, EINVAL, "name must be 1..15 bytes");
  fd_ = ::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd_ < 0) {
    const int err = errno;
    throw SysError(what, err, Hint(err));
  }
  ifreq ifr{};
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  if (o.multiQueue) ifr.ifr_flags |= IFF_MULTI_QUEUE;
  if (o.vnetHdr) ifr.ifr_flags |= IFF_VNET_HDR;
  std::strncpy(ifr.ifr_name, o.name.c_str(), IFNAMSIZ - 1);
  if (ioctl(fd_, TUNSETIFF, &ifr) < 0) {
    const int err = errno;
    Close();
    throw SysError(what, err, Hint(err));
  }
  name_ = ifr.ifr_name;
  vnetHdr_ = o.vnetHdr;
  ifindex_ = static_cast<int>(if_nametoindex(name_.c_str()));
  if (ifindex_ == 0) {
    const int err = errno;
    Close();
    throw SysError("ifindex of TUN " + name_, err);
  }
}

Tun::~Tun() { Close(); }

void Tun::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

}  // namespace flannelts
