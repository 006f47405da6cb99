#pragma once
// ICMP echo messages for the prober, as pure functions over byte spans (no descriptors, no clocks):
// the unit tests call them through the addon. Raw sockets see every ICMP message of the namespace,
// so each prober tells its own echoes apart by identifier, sequence and an 8-byte cookie that starts
// the payload (replies echo the whole payload; errors quote at least the 8-byte ICMP header, and the
// cookie too when they quote more, as Linux does).
#include <cstddef>
#include <cstdint>

#include "base/ipaddr.h"

namespace flannelts {

constexpr size_t kEchoHdrLen = 8;  // type, code, checksum, identifier, sequence
constexpr size_t kCookieLen = 8;
// Data bytes after the header: ping's default (-s 56) makes a 64-byte message, so the RTTs of the two
// compare; at least the cookie, at most what a 1500-byte frame carries over IPv4 (ping -s 1472).
constexpr size_t kDefaultEchoData = 56;
constexpr size_t kMaxEchoData = 1472;

// What identifies one prober's echoes.
struct EchoKey {
  IpAddr target;  // the echoes' destination; its family selects ICMP or ICMPv6
  uint16_t id = 0;
  uint8_t cookie[kCookieLen] = {};
};

// Writes the echo request for seq with dataLen data bytes (kCookieLen..kMaxEchoData) into out and
// returns its length, 0 when dataLen is out of range or out is smaller. IPv4 carries our checksum;
// ICMPv6's stays 0 because the kernel computes it on raw ICMPv6 sockets (RFC 3542 3.1).
size_t BuildEchoRequest(const EchoKey& key, uint16_t seq, size_t dataLen, uint8_t* out, size_t cap);

enum class EchoKind : uint8_t {
  kIgnored,  // not about one of our echoes (see EchoMatch::ignored)
  kReply,    // the echo reply to our request seq
  kError,    // an ICMP error quoting our request seq
};

struct EchoMatch {
  EchoKind kind = EchoKind::kIgnored;
  const char* ignored = "";  // why, for kIgnored: a short phrase the tests assert on
  uint16_t seq = 0;
  uint8_t type = 0;  // ICMP type and code of the reply or error
  uint8_t code = 0;
  uint32_t mtu = 0;  // the next-hop MTU of "fragmentation needed" / "packet too big", else 0
  IpAddr from;       // who sent the reply or the error
};

// IPv4: p is the whole datagram as a raw IPv4 socket delivers it (IP header first); the sender is
// the header's source. IPv6: p is the ICMPv6 message and from6 the sender (recvfrom's address).
// Never reads past n.
EchoMatch MatchEcho(const EchoKey& key, const uint8_t* p, size_t n, const IpAddr& from6);

}  // namespace flannelts
