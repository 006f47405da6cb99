// TUN open. Non-blocking so a worker can drain a batch and return to poll() without a stuck read.
#include "tun.h"

#include <fcntl.h>
#include <net/if.h>  // before linux/if_tun.h: glibc and linux/if.h both define struct ifreq
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/errors.h"

// linux/if_tun.h of older userspace headers predates USO (kernel 6.2).
constexpr unsigned kTunFUso4 = 0x20, kTunFUso6 = 0x40;

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
  int rc = ioctl(fd_, TUNSETIFF, &ifr);
  if (rc < 0 && errno == EINVAL && o.vnetHdr) {
    // A kernel (or seccomp profile) without IFF_VNET_HDR: run as a plain TUN, every offload off.
    notes_ += "vnetHdr: TUNSETIFF IFF_VNET_HDR refused (EINVAL); ";
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags & ~IFF_VNET_HDR);
    rc = ioctl(fd_, TUNSETIFF, &ifr);
  }
  if (rc < 0) {
    const int err = errno;
    Close();
    throw SysError(what, err, Hint(err));
  }
  name_ = ifr.ifr_name;
  vnetHdr_ = (ifr.ifr_flags & IFF_VNET_HDR) != 0;
  if (vnetHdr_ && o.tso) ProbeOffload(o.uso);
  else if (!vnetHdr_ && (o.tso || o.uso)) notes_ += "tso/uso: need vnetHdr; ";
  ifindex_ = static_cast<int>(if_nametoindex(name_.c_str()));
  if (ifindex_ == 0) {
    const int err = errno;
    Close();
    throw SysError("ifindex of TUN " + name_, err);
  }
}

Tun::Tun(int fd, const TunOffloads& negotiated) {
  const int flags = fcntl(fd, F_GETFL);
  if (flags < 0) throw SysError("TUN fd " + std::to_string(fd), errno);
  if (!(flags & O_NONBLOCK)) throw SysError("TUN fd " + std::to_string(fd), EINVAL, "must be non-blocking");
  // The same implications the kernel enforces on a real TUN (TUNSETOFFLOAD needs IFF_VNET_HDR).
  if ((negotiated.tso && !negotiated.vnetHdr) || (negotiated.uso && !negotiated.tso))
    throw SysError("TUN fd " + std::to_string(fd), EINVAL, "uso needs tso, tso needs vnetHdr");
  fd_ = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (fd_ < 0) throw SysError("dup TUN fd " + std::to_string(fd), errno);
  vnetHdr_ = negotiated.vnetHdr;
  tso_ = negotiated.tso;
  uso_ = negotiated.uso;
}

// Asks for the widest offload set first and narrows on refusal: USO4/6 only exist since 6.2, and an
// older kernel rejects unknown bits with EINVAL rather than ignoring them.
void Tun::ProbeOffload(bool uso) {
  const unsigned base = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN;
  if (uso && ioctl(fd_, TUNSETOFFLOAD, base | kTunFUso4 | kTunFUso6) == 0) {
    tso_ = uso_ = true;
    return;
  }
  if (uso) notes_ += std::string("uso: TUNSETOFFLOAD USO4|USO6 refused (") + ErrnoName(errno) + "); ";
  if (ioctl(fd_, TUNSETOFFLOAD, base) == 0) {
    tso_ = true;
    return;
  }
  notes_ += std::string("tso: TUNSETOFFLOAD TSO4|TSO6 refused (") + ErrnoName(errno) + "); ";
}

Tun::~Tun() { Close(); }

void Tun::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

}  // namespace flannelts
