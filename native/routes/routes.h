#pragma once
// Longest-prefix-match table over peer subnets (v4 and v6) -> peer {public address, port}.
// Immutable once built: control builds a new table per lease change and the engine swaps a pointer
// (see engine/qsbr.h), so the packet path reads it without locks. Cost per lookup is one hash probe per
// distinct prefix length present (typically 1-2), independent of the number of peers.
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "base/ipaddr.h"
#include "base/mac.h"

namespace flannelts {

// Per-peer counters, keyed by subnet and shared between successive tables so they survive swaps.
// Cache-line aligned: the two worker threads update different peers' counters concurrently.
struct alignas(64) PeerCounters {
  std::atomic<uint64_t> txPackets{0}, txBytes{0}, rxPackets{0}, rxBytes{0};
  // Wall-clock ms of the last packet accepted from this peer (0 = never); written at most once a
  // second per peer, from a clock read once per receive batch.
  std::atomic<int64_t> lastRxMs{0};
};

class EncapPeer;

struct RouteSpec {
  std::string subnet;  // CIDR
  std::string publicIp;
  uint16_t port = 0;
  std::string mac;  // the peer's VTEP MAC (userspace VXLAN); empty for flannel-udp peers
  // A WireGuard peer's public key (64 hex digits); empty for the other formats. With a key, publicIp
  // may be empty (and port 0): a peer whose endpoint is learnt when it first shakes hands.
  std::string publicKey;
};

struct RouteEntry {
  Prefix subnet;
  IpAddr publicIp;
  uint16_t port = 0;
  sockaddr_storage sa{};  // ready for sendmmsg
  socklen_t saLen = 0;
  Mac mac;  // zero when the spec had none
  std::shared_ptr<PeerCounters> counters;
  std::shared_ptr<EncapPeer> encapPeer;  // the encapsulation's state of this peer (encap/encapsulation.h); may be null
};

class RouteTable {
 public:
  using CounterSource = std::function<std::shared_ptr<PeerCounters>(const std::string& subnetKey)>;

  // Validates every spec; throws std::invalid_argument naming the bad entry (index and field).
  static std::unique_ptr<RouteTable> Build(const std::vector<RouteSpec>& specs, const CounterSource& counters);

  // Most specific entry containing addr, or nullptr.
  const RouteEntry* Lookup(const IpAddr& addr) const;
  // True when addr is the public address of some peer (outer-source check on receive).
  bool IsPeerAddress(const IpAddr& addr) const;
  const std::vector<RouteEntry>& entries() const { return entries_; }
  // Entry i (specs[i] of Build) gets the encapsulation's peer state; only before the table is published.
  void SetEncapPeer(size_t i, std::shared_ptr<EncapPeer> p) { entries_[i].encapPeer = std::move(p); }

 private:
  struct Key {
    uint64_t hi, lo;
    bool operator==(const Key& o) const { return hi == o.hi && lo == o.lo; }
  };
  struct KeyHash {
    size_t operator()(const Key& k) const {
      uint64_t h = k.hi * 0x9e3779b97f4a7c15ull ^ (k.lo + 0x632be59bd9b4e019ull + (k.hi << 6));
      h ^= h >> 31;
      h *= 0xbf58476d1ce4e5b9ull;
      return static_cast<size_t>(h ^ (h >> 29));
    }
  };
  // One prefix length: an open-addressing table (linear probing, load <= 1/2) of key -> entry index.
  // Flat slots instead of unordered_map's bucket -> node chain: one cache line per probe, so a
  // 10,000-peer table costs about what a 10-peer one does.
  struct Slot {
    Key key;
    uint32_t idx;  // kEmpty when free
  };
  static constexpr uint32_t kEmpty = 0xffffffffu;
  struct Level {
    uint8_t len;
    size_t mask;
    std::vector<Slot> slots;
    const uint32_t* Find(const Key& k) const {
      for (size_t i = KeyHash{}(k) & mask;; i = (i + 1) & mask) {
        const Slot& s = slots[i];
        if (s.idx == kEmpty) return nullptr;
        if (s.key == k) return &s.idx;
      }
    }
  };
  static Level MakeLevel(uint8_t len, const std::unordered_map<Key, uint32_t, KeyHash>& m);

  static Key MakeKey(const IpAddr& a, unsigned len);

  std::vector<RouteEntry> entries_;
  std::vector<Level> v4_, v6_;  // sorted by prefix length, longest first
  std::unordered_set<Key, KeyHash> peers4_, peers6_;
};

}  // namespace flannelts
