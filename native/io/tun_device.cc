// TUN open, offload probe, reads and writes. Non-blocking so a worker can drain a batch and return to
// poll() without a stuck read.
#include "io/tun_device.h"

#include <fcntl.h>
#include <net/if.h>  // before linux/if_tun.h: glibc and linux/if.h both define struct ifreq
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/errors.h"
#include "base/ip_packet.h"

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

std::unique_ptr<TunDevice> TunDevice::Open(const TunOptions& o) {
  const std::string what = "open TUN " + o.name;
  if (o.name.empty() || o.name.size() >= IFNAMSIZ) throw SysError(what, EINVAL, "name must be 1..15 bytes");
  std::unique_ptr<TunDevice> t(new TunDevice);  // closes the fd if anything below throws
  t->fd_ = ::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (t->fd_ < 0) {
    const int err = errno;
    throw SysError(what, err, Hint(err));
  }
  ifreq ifr{};
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  if (o.multiQueue) ifr.ifr_flags |= IFF_MULTI_QUEUE;
  if (o.vnetHdr) ifr.ifr_flags |= IFF_VNET_HDR;
  std::strncpy(ifr.ifr_name, o.name.c_str(), IFNAMSIZ - 1);
  int rc = ioctl(t->fd_, TUNSETIFF, &ifr);
  if (rc < 0 && errno == EINVAL && o.vnetHdr) {
    // A kernel (or seccomp profile) without IFF_VNET_HDR: run as a plain TUN, every offload off.
    t->notes_ += "vnetHdr: TUNSETIFF IFF_VNET_HDR refused (EINVAL); ";
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags & ~IFF_VNET_HDR);
    rc = ioctl(t->fd_, TUNSETIFF, &ifr);
  }
  if (rc < 0) {
    const int err = errno;
    throw SysError(what, err, Hint(err));
  }
  t->name_ = ifr.ifr_name;
  t->offloads_.vnetHdr = (ifr.ifr_flags & IFF_VNET_HDR) != 0;
  if (t->offloads_.vnetHdr && o.tso) t->ProbeOffload(o.uso);
  else if (!t->offloads_.vnetHdr && (o.tso || o.uso)) t->notes_ += "tso/uso: need vnetHdr; ";
  t->ifindex_ = static_cast<int>(if_nametoindex(t->name_.c_str()));
  if (t->ifindex_ == 0) throw SysError("ifindex of TUN " + t->name_, errno);
  return t;
}

std::unique_ptr<TunDevice> TunDevice::Adopt(int fd, const TunOffloads& negotiated) {
  const std::string what = "TUN fd " + std::to_string(fd);
  const int flags = fcntl(fd, F_GETFL);
  if (flags < 0) throw SysError(what, errno);
  if (!(flags & O_NONBLOCK)) throw SysError(what, EINVAL, "must be non-blocking");
  // The same implications the kernel enforces on a real TUN (TUNSETOFFLOAD needs IFF_VNET_HDR).
  if ((negotiated.tso && !negotiated.vnetHdr) || (negotiated.uso && !negotiated.tso))
    throw SysError(what, EINVAL, "uso needs tso, tso needs vnetHdr");
  std::unique_ptr<TunDevice> t(new TunDevice);
  t->fd_ = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (t->fd_ < 0) throw SysError("dup " + what, errno);
  t->offloads_ = negotiated;
  return t;
}

// Asks for the widest offload set first and narrows on refusal: USO4/6 only exist since 6.2, and an
// older kernel rejects unknown bits with EINVAL rather than ignoring them.
void TunDevice::ProbeOffload(bool uso) {
  const unsigned base = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN;
  if (uso && ioctl(fd_, TUNSETOFFLOAD, base | kTunFUso4 | kTunFUso6) == 0) {
    offloads_.tso = offloads_.uso = true;
    return;
  }
  if (uso) notes_ += std::string("uso: TUNSETOFFLOAD USO4|USO6 refused (") + ErrnoName(errno) + "); ";
  if (ioctl(fd_, TUNSETOFFLOAD, base) == 0) {
    offloads_.tso = true;
    return;
  }
  notes_ += std::string("tso: TUNSETOFFLOAD TSO4|TSO6 refused (") + ErrnoName(errno) + "); ";
}

TunDevice::~TunDevice() { Close(); }

void TunDevice::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

ssize_t TunDevice::Read(uint8_t* buf, size_t cap) const { return ::read(fd_, buf, cap); }

bool TunDevice::WriteRaw(const uint8_t* p, size_t n) const { return ::write(fd_, p, n) >= 0; }

bool TunDevice::WritePlain(const uint8_t* p, size_t n) const {
  if (!offloads_.vnetHdr) return WriteRaw(p, n);
  static const uint8_t kPlain[kVnetHdrLen] = {};
  iovec v[2] = {{const_cast<uint8_t*>(kPlain), kVnetHdrLen}, {const_cast<uint8_t*>(p), n}};
  return writev(fd_, v, 2) >= 0;
}

bool TunDevice::WriteGathered(const uint8_t* hdr, const iovec* parts, int nparts) const {
  iovec v[1 + kMaxGroParts];
  v[0] = iovec{const_cast<uint8_t*>(hdr), kVnetHdrLen};
  nparts = std::min(nparts, kMaxGroParts);
  std::copy(parts, parts + nparts, v + 1);
  return writev(fd_, v, 1 + nparts) >= 0;
}

void TunWriter::Write(const uint8_t* hdr, const iovec* parts, int nparts, size_t len, size_t segments) {
  nparts = std::min(nparts, kMaxGroParts);
  if (tun_.WriteGathered(hdr, parts, nparts)) {
    if (segments > 1) events_->Coalesced(segments);
    return;
  }
  // The capture wants the lost packet in one piece: gathered here, on the error path only.
  const uint8_t* pkt = static_cast<const uint8_t*>(parts[0].iov_base);
  if (nparts > 1) {
    if (!lost_) lost_.reset(new uint8_t[kMaxPacket]);
    len = 0;
    for (int i = 0; i < nparts && len < kMaxPacket; i++) {
      const size_t n = std::min(parts[i].iov_len, kMaxPacket - len);
      std::memcpy(lost_.get() + len, parts[i].iov_base, n);
      len += n;
    }
    pkt = lost_.get();
  }
  events_->WriteFailed(pkt, len, segments);
}

}  // namespace flannelts
