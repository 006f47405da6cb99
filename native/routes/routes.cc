// Route table build and lookup. Build runs on the JavaScript thread; Lookup on worker threads.
#include "routes/routes.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <stdexcept>

namespace flannelts {

namespace {

uint64_t Load64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = v << 8 | p[i];
  return v;
}

uint64_t MaskTop(unsigned bits) { return bits == 0 ? 0 : bits >= 64 ? ~0ull : ~0ull << (64 - bits); }

}  // namespace

RouteTable::Key RouteTable::MakeKey(const IpAddr& a, unsigned len) {
  if (a.family == 4) {
    const uint64_t v = static_cast<uint64_t>(a.bytes[0]) << 24 | a.bytes[1] << 16 | a.bytes[2] << 8 | a.bytes[3];
    const uint64_t mask = len == 0 ? 0 : (0xffffffffull << (32 - len)) & 0xffffffffull;
    return Key{0, v & mask};
  }
  const uint64_t hi = Load64(a.bytes), lo = Load64(a.bytes + 8);
  return Key{hi & MaskTop(len), lo & MaskTop(len > 64 ? len - 64 : 0)};
}

std::unique_ptr<RouteTable> RouteTable::Build(const std::vector<RouteSpec>& specs, const CounterSource& counters) {
  auto t = std::make_unique<RouteTable>();
  t->entries_.reserve(specs.size());
  std::map<unsigned, std::unordered_map<Key, uint32_t, KeyHash>> levels4, levels6;

  for (size_t i = 0; i < specs.size(); i++) {
    const RouteSpec& s = specs[i];
    const std::string where = "peer[" + std::to_string(i) + "]";
    RouteEntry e;
    std::string err;
    if (!ParsePrefix(s.subnet, &e.subnet, &err)) {
      throw std::invalid_argument(where + ".subnet " + s.subnet + ": " + err);
    }
    const bool noEndpoint = s.publicIp.empty() && !s.publicKey.empty();
    if (!noEndpoint && !ParseIp(s.publicIp, &e.publicIp)) throw std::invalid_argument(where + ".publicIP " + s.publicIp + ": bad address");
    if (s.port == 0 && !noEndpoint) throw std::invalid_argument(where + ".port: must be 1..65535");
    e.port = s.port;
    if (!s.mac.empty() && (!ParseMac(s.mac.data(), s.mac.size(), &e.mac) || e.mac.IsZero()))
      throw std::invalid_argument(where + ".mac " + s.mac + ": not a MAC address (aa:bb:cc:dd:ee:ff)");
    if (!noEndpoint) e.saLen = ToSockaddr(e.publicIp, s.port, &e.sa);
    const std::string key = FormatPrefix(e.subnet);
    e.counters = counters(key);
    auto& levels = e.subnet.addr.family == 4 ? levels4 : levels6;
    const auto inserted = levels[e.subnet.len].emplace(MakeKey(e.subnet.addr, e.subnet.len), static_cast<uint32_t>(i));
    if (!inserted.second) throw std::invalid_argument(where + ".subnet " + s.subnet + ": duplicate subnet");
    if (!noEndpoint) (e.publicIp.family == 4 ? t->peers4_ : t->peers6_).insert(MakeKey(e.publicIp, e.publicIp.family == 4 ? 32 : 128));
    t->entries_.push_back(std::move(e));
  }
  for (auto it = levels4.rbegin(); it != levels4.rend(); ++it) t->v4_.push_back(MakeLevel(static_cast<uint8_t>(it->first), it->second));
  for (auto it = levels6.rbegin(); it != levels6.rend(); ++it) t->v6_.push_back(MakeLevel(static_cast<uint8_t>(it->first), it->second));
  return t;
}

RouteTable::Level RouteTable::MakeLevel(uint8_t len, const std::unordered_map<Key, uint32_t, KeyHash>& m) {
  size_t cap = 8;
  while (cap < 2 * m.size()) cap <<= 1;  // at most half full: probes stay short, and one always ends
  Level l{len, cap - 1, std::vector<Slot>(cap, Slot{Key{0, 0}, kEmpty})};
  for (const auto& [key, idx] : m) {
    size_t i = KeyHash{}(key) & l.mask;
    while (l.slots[i].idx != kEmpty) i = (i + 1) & l.mask;
    l.slots[i] = Slot{key, idx};
  }
  return l;
}

const RouteEntry* RouteTable::Lookup(const IpAddr& addr) const {
  const auto& levels = addr.family == 4 ? v4_ : v6_;
  for (const Level& l : levels) {
    if (const uint32_t* idx = l.Find(MakeKey(addr, l.len))) return &entries_[*idx];
  }
  return nullptr;
}

bool RouteTable::IsPeerAddress(const IpAddr& addr) const {
  if (addr.family == 4) return peers4_.count(MakeKey(addr, 32)) != 0;
  return peers6_.count(MakeKey(addr, 128)) != 0;
}

}  // namespace flannelts
