#pragma once
// A v4-or-v6 address in network byte order, small enough to copy by value on the packet path.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

namespace flannelts {

struct IpAddr {
  uint8_t family = 0;  // 4 or 6; 0 = none
  uint8_t bytes[16] = {};

  bool operator==(const IpAddr& o) const {
    return family == o.family && std::memcmp(bytes, o.bytes, family == 4 ? 4 : 16) == 0;
  }
};

// inet_pton for either family; false when s is neither.
inline bool ParseIp(const std::string& s, IpAddr* out) {
  *out = IpAddr{};
  if (inet_pton(AF_INET, s.c_str(), out->bytes) == 1) {
    out->family = 4;
    return true;
  }
  if (inet_pton(AF_INET6, s.c_str(), out->bytes) == 1) {
    out->family = 6;
    return true;
  }
  return false;
}

inline std::string FormatIp(const IpAddr& a) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (a.family == 0) return "";
  inet_ntop(a.family == 4 ? AF_INET : AF_INET6, a.bytes, buf, sizeof buf);
  return buf;
}

struct Prefix {
  IpAddr addr;  // masked network address
  uint8_t len = 0;
};

// Clears the bits after len (len <= 32 or 128 by family).
inline void MaskAddr(IpAddr* a, unsigned len) {
  const unsigned total = a->family == 4 ? 4 : 16;
  for (unsigned i = 0; i < total; i++) {
    const unsigned bit = i * 8;
    if (bit >= len) {
      a->bytes[i] = 0;
    } else if (bit + 8 > len) {
      a->bytes[i] &= static_cast<uint8_t>(0xff00u >> (len - bit));
    }
  }
}

// "198.19.1.0/24" or "2001:db8:100::/56"; host bits must be zero. false (with err) on bad input.
inline bool ParsePrefix(const std::string& s, Prefix* out, std::string* err) {
  const auto slash = s.find('/');
  if (slash == std::string::npos) {
    *err = "missing /length";
    return false;
  }
  if (!ParseIp(s.substr(0, slash), &out->addr)) {
    *err = "bad address";
    return false;
  }
  const std::string lenStr = s.substr(slash + 1);
  char* end = nullptr;
  const long len = std::strtol(lenStr.c_str(), &end, 10);
  const long max = out->addr.family == 4 ? 32 : 128;
  if (lenStr.empty() || *end != '\0' || len < 0 || len > max) {
    *err = "bad prefix length";
    return false;
  }
  IpAddr masked = out->addr;
  MaskAddr(&masked, static_cast<unsigned>(len));
  if (!(masked == out->addr)) {
    *err = "host bits set";
    return false;
  }
  out->len = static_cast<uint8_t>(len);
  return true;
}

// The socket address of addr:port, ready for sendto/sendmmsg; returns its length.
inline socklen_t ToSockaddr(const IpAddr& addr, uint16_t port, sockaddr_storage* out) {
  *out = sockaddr_storage{};
  if (addr.family == 4) {
    auto* sin = reinterpret_cast<sockaddr_in*>(out);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    std::memcpy(&sin->sin_addr, addr.bytes, 4);
    return sizeof(sockaddr_in);
  }
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(out);
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = htons(port);
  std::memcpy(&sin6->sin6_addr, addr.bytes, 16);
  return sizeof(sockaddr_in6);
}

inline std::string FormatPrefix(const Prefix& p) { return FormatIp(p.addr) + "/" + std::to_string(p.len); }

// Whether a lies inside p.
inline bool InPrefix(const IpAddr& a, const Prefix& p) {
  if (a.family != p.addr.family) return false;
  IpAddr masked = a;
  MaskAddr(&masked, p.len);
  return masked == p.addr;
}

// The address of a socket address (family 0 when it is neither IPv4 nor IPv6).
inline IpAddr FromSockaddr(const sockaddr_storage& ss) {
  IpAddr a;
  if (ss.ss_family == AF_INET) {
    a.family = 4;
    std::memcpy(a.bytes, &reinterpret_cast<const sockaddr_in&>(ss).sin_addr, 4);
  } else if (ss.ss_family == AF_INET6) {
    a.family = 6;
    std::memcpy(a.bytes, &reinterpret_cast<const sockaddr_in6&>(ss).sin6_addr, 16);
  }
  return a;
}

}  // namespace flannelts
