#pragma once
// Batched datagram I/O on the underlay sockets. UdpSender sends runs of equal-size datagrams with
// sendmmsg, up to 64 segments per UDP_SEGMENT send, and falls back when the kernel refuses GSO;
// UdpReceiver reads with recvmmsg and reports UDP_GRO batches. Neither knows what the datagrams
// carry: the engine builds them and accounts for them.
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include <sys/uio.h>

namespace flannelts {

// One routed packet's wire datagrams waiting to go out: segs datagrams at data, each segLen bytes but
// the last (lastLen <= segLen), datagram k at data + k * stride (stride > segLen: a gap behind each,
// the tail room an encapsulation did not use; a UDP_SEGMENT send then gathers them, one iovec each).
struct DatagramRun {
  uint8_t* data;
  size_t segLen, lastLen, segs, stride;
  void* owner;  // the caller's, handed back in SendEvents (the engine: the peer's counters)
  sockaddr_storage addr;  // a copy: a send may outlive the table the address came from
  socklen_t addrLen;
  int fd;  // the socket it leaves by
};

// What happened to the datagrams of a flush, for the caller's counters.
class SendEvents {
 public:
  virtual ~SendEvents() = default;
  // segs datagrams of run (bytes in all) went out in one sendmsg (more than one: a UDP_SEGMENT send).
  virtual void Sent(const DatagramRun& run, size_t segs, size_t bytes) = 0;
  // One datagram the socket refused (or that waited too long for room).
  virtual void SendFailed(const uint8_t* p, size_t len) = 0;
  // EIO from a UDP_SEGMENT send: the route's device cannot checksum GSO batches; GSO is off for good.
  virtual void GsoDisabled() = 0;
};

class UdpSender {
 public:
  static constexpr int kMaxRuns = 128;        // runs pending at once (one TUN batch)
  static constexpr int kMaxDatagrams = 1024;  // UIO_MAXIOV: the most one sendmmsg takes

  int runs() const { return nRuns_; }
  size_t datagrams() const { return nDatagrams_; }
  // The next run to fill in (runs() < kMaxRuns, and datagrams() + its segs <= kMaxDatagrams).
  DatagramRun& Add(size_t segs) {
    nDatagrams_ += segs;
    return runs_[nRuns_++];
  }
  // Sends every pending run, one sendmmsg series per socket in the order the sockets first appear,
  // then forgets them. gso: UDP_SEGMENT may be used (cleared for good on EIO). A full socket buffer
  // is waited out for at most ~1 s per socket (less once stop is set: stopFd wakes the wait).
  void Flush(std::atomic<bool>& gso, int stopFd, const std::atomic<bool>& stop, SendEvents& ev);

 private:
  // One sendmmsg entry: a run of segments of one DatagramRun.
  struct Unit {
    uint8_t* data;
    size_t bytes, segLen, segs, stride;  // bytes: on the wire, without the gaps
    const DatagramRun* owner;
  };
  void FlushSocket(int fd, std::atomic<bool>& gso, int stopFd, const std::atomic<bool>& stop, SendEvents& ev);
  void FillMsg(int i);

  // Left uninitialised (the sender lives in a thread's scratch): an idle engine does not touch, and
  // keep resident, pages it never uses.
  DatagramRun runs_[kMaxRuns];
  int nRuns_ = 0;
  size_t nDatagrams_ = 0;
  Unit units_[kMaxDatagrams];
  Unit spare_[kMaxDatagrams];
  mmsghdr msgs_[kMaxDatagrams];
  iovec iov_[kMaxDatagrams];  // a unit with gaps takes one per segment; never more than one per datagram
  size_t nextIov_ = 0;
  alignas(cmsghdr) uint8_t ctrl_[kMaxDatagrams][CMSG_SPACE(sizeof(uint16_t))];
};

class UdpReceiver {
 public:
  static constexpr int kMaxSlots = 64;  // UDP_GRO hands back up to 64 KiB per datagram: few, large slots

  explicit UdpReceiver(int slots);
  int slots() const { return slots_; }
  // recvmmsg(MSG_DONTWAIT) into the slots, asking for UDP_GRO segment sizes when gro is on:
  // the number of datagrams read, or -1 with errno set.
  int Receive(int fd, bool gro);
  uint8_t* data(int i) const;
  size_t length(int i) const { return msgs_[i].msg_len; }
  const sockaddr_storage& source(int i) const { return addr_[i]; }
  bool truncated(int i) const { return (msgs_[i].msg_hdr.msg_flags & MSG_TRUNC) != 0; }
  // The segment size of a UDP_GRO batch (same-size datagrams of one sender glued together), or 0
  // when the kernel delivered the datagram as is.
  size_t groSegment(int i) const;

 private:
  const int slots_;
  std::unique_ptr<uint8_t[]> buf_;
  mmsghdr msgs_[kMaxSlots];
  iovec iov_[kMaxSlots];
  sockaddr_storage addr_[kMaxSlots];
  alignas(cmsghdr) uint8_t ctrl_[kMaxSlots][CMSG_SPACE(sizeof(int))];
  bool gro_ = false;
};

}  // namespace flannelts
