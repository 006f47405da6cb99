#pragma once
// The TUN device: open /dev/net/tun with IFF_TUN|IFF_NO_PI (non-blocking), negotiate the virtio
// header and the offloads, then read one packet at a time and write packets, whole or gathered from
// pieces. Address, MTU, up state and routes are configured by the TypeScript netlink layer, not here.
#include <sys/types.h>
#include <sys/uio.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "offload/gro.h"

namespace flannelts {

struct TunOptions {
  std::string name = "flannel%d";  // kernel replaces %d
  bool multiQueue = false;
  // IFF_VNET_HDR: every read/write carries a virtio_net_hdr (offload/vnet_hdr.h). Falls back to a plain
  // TUN when the kernel refuses it.
  bool vnetHdr = false;
  // TUNSETOFFLOAD with CSUM|TSO4|TSO6 (needs vnetHdr): the kernel hands us TCP super-packets.
  bool tso = false;
  // ... plus USO4|USO6 (UDP super-packets), where the kernel has them (6.2+).
  bool uso = false;
};

// The offloads in effect on a TUN fd: negotiated by Open's probe, or given with an adopted fd.
struct TunOffloads {
  bool vnetHdr = false, tso = false, uso = false;
};

class TunDevice {
 public:
  // Opens and configures a TUN: TUNSETIFF (IFF_VNET_HDR dropped when refused), then the offload probe
  // USO -> TSO -> none. Throws SysError, e.g. "open TUN flannel%d: EPERM (needs CAP_NET_ADMIN)".
  static std::unique_ptr<TunDevice> Open(const TunOptions& o);
  // The engine's test seam: an fd that is already open and configured (a TUN, or a test's socketpair
  // end) with the offloads negotiated on it; no ioctl, no name, ifindex 0. The fd is dup()ed: the
  // caller keeps its own fd and closes it; Close() closes only the duplicate. It must be non-blocking
  // (workers drain it until EAGAIN): a blocking fd, or tso without vnetHdr, is refused with EINVAL.
  static std::unique_ptr<TunDevice> Adopt(int fd, const TunOffloads& negotiated);
  ~TunDevice();
  TunDevice(const TunDevice&) = delete;
  TunDevice& operator=(const TunDevice&) = delete;

  int fd() const { return fd_; }
  const std::string& name() const { return name_; }
  int ifindex() const { return ifindex_; }
  const TunOffloads& offloads() const { return offloads_; }
  // Why a requested offload is off ("" when everything asked for is on), for the startup log.
  const std::string& notes() const { return notes_; }

  // One packet (after its virtio header, when negotiated) into buf; -1 with errno as read(2) sets it
  // (EAGAIN: drained).
  ssize_t Read(uint8_t* buf, size_t cap) const;
  // A packet as is: p starts with a virtio header when one was negotiated.
  bool WriteRaw(const uint8_t* p, size_t n) const;
  // A packet the engine made itself (ICMP errors): with a plain virtio header in front when negotiated.
  bool WritePlain(const uint8_t* p, size_t n) const;
  // hdr (a virtio header) followed by parts, gathered by one writev.
  bool WriteGathered(const uint8_t* hdr, const iovec* parts, int nparts) const;
  void Close();

 private:
  TunDevice() = default;
  void ProbeOffload(bool uso);
  int fd_ = -1;
  std::string name_;
  int ifindex_ = 0;
  TunOffloads offloads_;
  std::string notes_;
};

// Where a TunWriter reports: packets written (more than one segment: a GRO super-packet) and writes
// the TUN refused (the packet in one piece, for a capture).
class TunWriteEvents {
 public:
  virtual ~TunWriteEvents() = default;
  virtual void Coalesced(size_t segments) = 0;
  virtual void WriteFailed(const uint8_t* pkt, size_t len, size_t segments) = 0;
};

// The GRO table's sink: one writev per (super-)packet, virtio header first, as the TUN expects.
class TunWriter : public TunSink {
 public:
  TunWriter(const TunDevice& tun, TunWriteEvents* events) : tun_(tun), events_(events) {}
  void Write(const uint8_t* hdr, const iovec* parts, int nparts, size_t len, size_t segments) override;

 private:
  const TunDevice& tun_;
  TunWriteEvents* events_;
  std::unique_ptr<uint8_t[]> lost_;  // a refused packet gathered for the capture (error path only)
};

}  // namespace flannelts
