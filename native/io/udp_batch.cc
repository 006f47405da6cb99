// Batched sends (sendmmsg, UDP_SEGMENT, the GSO fallback) and receives (recvmmsg, UDP_GRO); see
// udp_batch.h.
#include "io/udp_batch.h"

#include <netinet/udp.h>
#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/ip_packet.h"

namespace flannelts {

namespace {

constexpr size_t kMaxGsoSegsPerSend = 64;  // UDP_MAX_SEGMENTS on older kernels
// A UDP_SEGMENT send is one UDP datagram before segmentation: payload <= 65535 - IPv6 + UDP headers.
constexpr size_t kMaxGsoBytes = 65535 - 48;

}  // namespace

void UdpSender::Flush(std::atomic<bool>& gso, int stopFd, const std::atomic<bool>& stop, SendEvents& ev) {
  // One sendmmsg series per socket: flannel-udp uses the two family sockets, VXLAN a socket per flow.
  int fds[kMaxRuns];
  int nfds = 0;
  for (int i = 0; i < nRuns_; i++) {
    const int fd = runs_[i].fd;
    if (std::find(fds, fds + nfds, fd) == fds + nfds) fds[nfds++] = fd;
  }
  for (int i = 0; i < nfds; i++) FlushSocket(fds[i], gso, stopFd, stop, ev);
  nRuns_ = 0;
  nDatagrams_ = 0;
}

void UdpSender::FillMsg(int i) {
  Unit& u = units_[i];
  iovec* iov = &iov_[nextIov_];
  size_t niov = 1;
  if (u.segs > 1 && u.stride != u.segLen) {
    niov = u.segs;
    for (size_t k = 0; k < u.segs; k++) iov[k] = iovec{u.data + k * u.stride, k + 1 == u.segs ? u.bytes - k * u.segLen : u.segLen};
  } else {
    iov[0] = iovec{u.data, u.bytes};
  }
  nextIov_ += niov;
  msghdr& m = msgs_[i].msg_hdr;
  m = msghdr{const_cast<sockaddr_storage*>(&u.owner->addr), u.owner->addrLen, iov, niov, nullptr, 0, 0};
  if (u.segs > 1) {
    m.msg_control = ctrl_[i];
    m.msg_controllen = CMSG_SPACE(sizeof(uint16_t));
    cmsghdr* c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_UDP;
    c->cmsg_type = UDP_SEGMENT;
    c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
    const uint16_t size = static_cast<uint16_t>(u.segLen);
    std::memcpy(CMSG_DATA(c), &size, sizeof size);
  }
}

void UdpSender::FlushSocket(int fd, std::atomic<bool>& gsoFlag, int stopFd, const std::atomic<bool>& stop, SendEvents& ev) {
  bool gso = gsoFlag.load(std::memory_order_relaxed);
  // Cut the runs into units: with GSO, up to 64 segments and 64 KiB each; without, one per segment.
  int n = 0;
  for (int r = 0; r < nRuns_; r++) {
    const DatagramRun& run = runs_[r];
    if (run.fd != fd) continue;
    size_t seg = 0;
    uint8_t* at = run.data;
    while (seg < run.segs) {
      size_t take = 1;
      if (gso && run.segs > 1) {
        take = std::min<size_t>({run.segs - seg, kMaxGsoSegsPerSend, kMaxGsoBytes / run.segLen});
        if (take == 0) take = 1;
      }
      const bool hasLast = seg + take == run.segs;
      const size_t bytes = (take - (hasLast ? 1 : 0)) * run.segLen + (hasLast ? run.lastLen : 0);
      units_[n++] = Unit{at, bytes, run.segLen, take, run.stride, &run};
      at += take * run.stride;
      seg += take;
    }
  }
  nextIov_ = 0;
  for (int i = 0; i < n; i++) FillMsg(i);
  int off = 0, waits = 0;
  while (off < n) {
    const int r = sendmmsg(fd, msgs_ + off, static_cast<unsigned>(n - off), 0);
    if (r > 0) {
      for (int i = off; i < off + r; i++) ev.Sent(*units_[i].owner, units_[i].segs, units_[i].bytes);
      off += r;
      continue;
    }
    if (errno == EINTR) continue;
    const int err = errno;
    if (err != EAGAIN && err != ENOBUFS && units_[off].segs > 1) {
      // A GSO send the kernel refused. EIO: the route's device cannot checksum a GSO batch, so
      // UDP_SEGMENT is unusable here: switch it off for good. Anything else (EINVAL/EMSGSIZE: the
      // segments do not fit the path MTU and need IP fragmentation, which GSO cannot do): resend
      // just this run one datagram per segment, so the kernel may fragment each as it would have.
      const int upto = err == EIO ? n : off + 1;
      if (err == EIO) {
        gso = false;
        gsoFlag.store(false);
        ev.GsoDisabled();
      }
      int m = 0;
      for (int i = off; i < n; i++) spare_[m++] = units_[i];
      nextIov_ = static_cast<size_t>(msgs_[off].msg_hdr.msg_iov - iov_);  // the units from off on are filled anew
      n = off;
      for (int i = 0; i < m; i++) {
        const Unit& u = spare_[i];
        if (off + i >= upto || u.segs == 1) {
          units_[n++] = u;
          continue;
        }
        uint8_t* at = u.data;
        for (size_t k = 0; k < u.segs; k++) {
          const size_t b = k + 1 == u.segs ? u.bytes - (u.segs - 1) * u.segLen : u.segLen;
          units_[n++] = Unit{at, b, u.segLen, 1, u.stride, u.owner};  // total segments <= kMaxDatagrams by construction
          at += u.stride;
        }
      }
      for (int i = off; i < n; i++) FillMsg(i);
      continue;
    }
    errno = err;
    if ((errno == EAGAIN || errno == ENOBUFS) && waits < 100 && !stop.load(std::memory_order_relaxed)) {
      // Socket buffer full: wait for room (or stop) for at most ~1 s per batch, then drop.
      waits++;
      pollfd fds[2] = {{fd, POLLOUT, 0}, {stopFd, POLLIN, 0}};
      poll(fds, 2, 10);
      continue;
    }
    // The unit at `off` failed (e.g. ECONNREFUSED from an earlier ICMP, EHOSTUNREACH): count its
    // segments and go on with the rest; after too many waits, drop what is left.
    const int last = (errno == EAGAIN || errno == ENOBUFS) ? n : off + 1;
    for (int i = off; i < last; i++) {
      const Unit& u = units_[i];
      for (size_t k = 0; k < u.segs; k++) ev.SendFailed(u.data + k * u.stride, k + 1 == u.segs ? u.bytes - k * u.segLen : u.segLen);
    }
    off = last;
  }
}

UdpReceiver::UdpReceiver(int slots) : slots_(std::min(slots, kMaxSlots)), buf_(new uint8_t[static_cast<size_t>(std::min(slots, kMaxSlots)) * kMaxPacket]) {}

uint8_t* UdpReceiver::data(int i) const { return buf_.get() + static_cast<size_t>(i) * kMaxPacket; }

int UdpReceiver::Receive(int fd, bool gro) {
  gro_ = gro;
  for (int i = 0; i < slots_; i++) {
    iov_[i] = iovec{data(i), kMaxPacket};
    msgs_[i].msg_hdr = msghdr{&addr_[i], sizeof addr_[i], &iov_[i], 1, gro ? ctrl_[i] : nullptr, gro ? sizeof ctrl_[i] : 0, 0};
    msgs_[i].msg_len = 0;
  }
  return recvmmsg(fd, msgs_, static_cast<unsigned>(slots_), MSG_DONTWAIT, nullptr);
}

size_t UdpReceiver::groSegment(int i) const {
  if (!gro_) return 0;
  msghdr& m = const_cast<msghdr&>(msgs_[i].msg_hdr);
  for (cmsghdr* c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
    if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
      int v = 0;
      std::memcpy(&v, CMSG_DATA(c), sizeof v);
      return v > 0 ? static_cast<size_t>(v) : 0;
    }
  }
  return 0;
}

}  // namespace flannelts
