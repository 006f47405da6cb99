#pragma once
// One interface for every wire format the engine speaks: flannel-udp, VXLAN, and (issue 28)
// WireGuard. The engine routes, splits, coalesces, counts and captures; the encapsulation says what
// goes around an inner packet, who may send one, and what it must do on its own. A new format is a
// new file here and one entry in the JavaScript options parser (js/engine_options.cc), not a branch
// in the engine. docs/architecture.md has the table this interface was sketched against.
//
// Threads: the control thread calls CheckPeers/PeerKey/PeerState, Start and Stop; the thread that
// owns the TUN side calls Seal and Tick (never at the same time: both run under the engine's TUN
// lock); a socket reader calls Open and Admit, concurrently with Seal. The object lives as long as the
// engine and is destroyed after the data threads are joined; threads of its own it starts in Start
// and joins in Stop (and its destructor).
#include <sys/socket.h>

#include <climits>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/drop_reasons.h"
#include "base/ip_packet.h"
#include "base/ipaddr.h"

namespace flannelts {

struct RouteSpec;
struct RouteEntry;

// State an encapsulation keeps per peer (WireGuard: handshake, keypairs, counters, replay window,
// endpoint, a queue of packets waiting for a session, timers). Kept across peer table pushes under
// the encapsulation's PeerKey; freed once no table holds it and no worker can still see one that did.
class EncapPeer {
 public:
  virtual ~EncapPeer() = default;
};

// What the engine does for an encapsulation; callable from any thread.
class EncapHost {
 public:
  virtual ~EncapHost() = default;
  // Send on my own: one datagram the encapsulation made itself (an ARP reply, a handshake message, a
  // keepalive, a cookie reply, a packet released from a queue), now, from the listening socket of
  // to's family. A refusal is counted as socket_send_error (a capture shows the datagram from
  // captureFrom on) and returns false.
  virtual bool SendOwn(const IpAddr& to, uint16_t port, const uint8_t* datagram, size_t n, size_t captureFrom) = 0;
  // Whether a datagram from outer passes the outer-source check: outer is some peer's public address,
  // or the check is off (allowUnknownSource).
  virtual bool KnownPeer(const IpAddr& outer) const = 0;
  // The port we listen on (every flannel node of a backend uses the same one).
  virtual uint16_t ListenPort() const = 0;
  // Asks for a Tick as soon as possible (a handshake finished elsewhere: queued packets may go).
  virtual void RequestTick() = 0;
};

// Read once when the engine starts, so the packet path asks nothing per packet.
struct EncapTraits {
  size_t headroom = 0;            // bytes written in front of every inner segment on the wire
  size_t tailroom = 0;            // the most a segment may grow behind it (a tag, padding); 0: none
  bool decrementTtl = false;      // the engine is a router at both ends (flannel's proxy), not a device
  bool checkOuterSource = true;   // only peers' public addresses may send (unless allowUnknownSource)
  bool partialChecksums = false;  // hand received TCP/UDP packets to the TUN as CHECKSUM_PARTIAL
  size_t resegmentAbove = 0;      // inner TCP packets above this (the TUN MTU) arrive whole: re-segment them
};

// One routed inner packet on its way out, split into wire-sized segments in the TX arena.
struct WireRun {
  uint8_t* data;                   // segment k at data + k * stride: headroom bytes, then the inner segment
  size_t segs, segLen, lastLen;    // lengths include the headroom; Seal may grow them into the tailroom
                                   // (every segment but the last to one length), or send fewer segments
  size_t stride;                   // segLen as split + the tailroom
  int fd;                          // the family's listening socket; Seal may pick another
  sockaddr_storage* to;            // the peer's address (the engine's copy); Seal may change it
  socklen_t* toLen;
};

enum class TxVerdict : uint8_t {
  kSend,    // the run is ready to go
  kQueued,  // the encapsulation copied the segments into a queue of its own (no session yet, say)
  kDrop,    // counted with `drop`
};
struct Sealed {
  TxVerdict verdict = TxVerdict::kSend;
  int drop = kDropCount;
};

enum class RxVerdict : uint8_t {
  kInner,    // an inner packet at p + offset: the engine checks and delivers it
  kHandled,  // consumed by the encapsulation (an ARP request, a handshake message)
  kDrop,     // counted with `drop`; a capture shows the datagram from `offset` on
};
struct Opened {
  RxVerdict verdict = RxVerdict::kInner;
  int drop = kDropCount;
  size_t offset = 0;
  uint64_t sender = 0;  // who sent it as the encapsulation knows it (VXLAN: the source MAC), for Admit
};

class Encapsulation {
 public:
  static constexpr int64_t kNever = INT64_MAX;

  virtual ~Encapsulation() = default;
  const EncapTraits& traits() const { return traits_; }

  // --- control thread: a peer table push ---
  // Checks the encapsulation's fields of every peer before the table is built; throws
  // std::invalid_argument naming the entry ("peer[2].mac: ...").
  virtual void CheckPeers(const std::vector<RouteSpec>& specs) const {}
  // What identifies a peer's state across pushes; empty: the peer needs none (the default).
  virtual std::string PeerKey(const RouteSpec& spec) const { return ""; }
  // The state of a peer: `previous` when the last table had one under the same key, else a new one.
  virtual std::shared_ptr<EncapPeer> PeerState(const RouteSpec& spec, std::shared_ptr<EncapPeer> previous) { return previous; }

  // --- the TUN side ---
  // One routed inner packet (inner: its first segment's original headers, info from ClassifyPacket)
  // whose segments are in run: write the headers, choose the socket and address.
  virtual Sealed Seal(const RouteEntry& route, const uint8_t* inner, const PacketInfo& info, WireRun& run, EncapHost& host) = 0;
  // The next time Tick wants to run (CLOCK_MONOTONIC ns), kNever for none.
  virtual int64_t NextTickNs() const { return kNever; }
  // Timers (keepalives, retransmits, rekeys, key zeroing) and queues released by RequestTick.
  virtual void Tick(int64_t nowNs, EncapHost& host) {}

  // --- a socket reader ---
  // One datagram (p[0..n), writable: decryption may work in place) from outer:outerPort.
  virtual Opened Open(uint8_t* p, size_t n, const IpAddr& outer, uint16_t outerPort, EncapHost& host) = 0;
  // Whether `sender` (from Open) may send for route, the route of the inner source: kDropCount for
  // yes, else the drop reason.
  virtual int Admit(const RouteEntry& route, uint64_t sender) const { return kDropCount; }

  // Counters of its own for the engine's stats.
  virtual uint64_t ArpReplies() const { return 0; }

  // --- lifecycle (the control thread) ---
  // Engine::Start, before the data threads: threads of the encapsulation's own start here and may use
  // host until Stop.
  virtual void Start(EncapHost& host) {}
  // Engine::Close, after the data threads are joined and before the sockets close: those threads are
  // joined here. Also called when Start never was; idempotent.
  virtual void Stop() {}

 protected:
  explicit Encapsulation(const EncapTraits& t) : traits_(t) {}

 private:
  const EncapTraits traits_;
};

}  // namespace flannelts
