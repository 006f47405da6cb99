#pragma once
// The Internet checksum (RFC 1071), one implementation for the whole data plane: ICMP errors, the TTL
// update, GSO split, GRO coalesce and checksum completion all sum through SumHost.
//
// Sums are taken in host byte order 8 bytes at a time (RFC 1071 sec. 2(B): the one's-complement sum
// is byte-order independent) and swapped once when folded; the bulk of long spans goes through AVX2
// where the CPU has it. That keeps a 64 KiB split or coalesce well under the cost of the syscalls it
// saves.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "base/bytes.h"

namespace flannelts {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "checksum helpers assume a little-endian host");

namespace checksum_detail {
// The AVX2 part of SumHost for spans of 256 bytes and more; returns the bytes it left (< 64).
size_t SumAvx2(const uint8_t*& p, size_t n, uint64_t& acc);
extern const bool kHaveAvx2;
}  // namespace checksum_detail

// Host-order partial sum of p[0..n) added to acc; only the final call for a span may have an odd length.
inline uint64_t SumHost(const uint8_t* p, size_t n, uint64_t acc) {
#if defined(__x86_64__)
  if (n >= 256 && checksum_detail::kHaveAvx2) n = checksum_detail::SumAvx2(p, n, acc);
#endif
  // Four independent accumulators over 32-byte blocks: the adds of one block do not wait on each
  // other (one chain was the bottleneck in the TX profile). Each adds < 2^33 per block, so 64 bits
  // hold far more than a 64 KiB packet's worth.
  uint64_t a1 = 0, a2 = 0, a3 = 0;
  while (n >= 32) {
    uint64_t x0, x1, x2, x3;
    std::memcpy(&x0, p, 8);
    std::memcpy(&x1, p + 8, 8);
    std::memcpy(&x2, p + 16, 8);
    std::memcpy(&x3, p + 24, 8);
    acc += (x0 & 0xffffffffu) + (x0 >> 32);
    a1 += (x1 & 0xffffffffu) + (x1 >> 32);
    a2 += (x2 & 0xffffffffu) + (x2 >> 32);
    a3 += (x3 & 0xffffffffu) + (x3 >> 32);
    p += 32;
    n -= 32;
  }
  acc += a1 + a2 + a3;
  while (n >= 8) {
    uint64_t x;
    std::memcpy(&x, p, 8);
    acc += (x & 0xffffffffu) + (x >> 32);
    p += 8;
    n -= 8;
  }
  if (n >= 4) {
    uint32_t x;
    std::memcpy(&x, p, 4);
    acc += x;
    p += 4;
    n -= 4;
  }
  if (n >= 2) {
    uint16_t x;
    std::memcpy(&x, p, 2);
    acc += x;
    p += 2;
    n -= 2;
  }
  if (n) acc += p[0];  // the trailing byte is the high byte in network order == low byte in memory
  return acc;
}

// Folds a host-order sum to 16 bits and returns it in network order (not complemented).
inline uint16_t FoldNet(uint64_t acc) {
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  return Bswap16(static_cast<uint16_t>(acc));
}

// Folds a sum of network-order 16-bit words (a header field update, RFC 1624) to 16 bits.
inline uint16_t Fold16(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

// The folded sum of data after `initial` (a network-order partial sum, e.g. a pseudo-header), not
// complemented.
inline uint16_t ChecksumFold(const uint8_t* data, size_t n, uint32_t initial = 0) {
  return FoldNet(SumHost(data, n, Bswap16(Fold16(initial))));
}

// The Internet checksum of data: the complement of ChecksumFold, ready to store with Wr16.
inline uint16_t InetChecksum(const uint8_t* data, size_t n, uint32_t initial = 0) {
  return static_cast<uint16_t>(~ChecksumFold(data, n, initial));
}

// Pseudo-header sum (host order) of the IP packet at p (v4: IHL 5 fields; v6: fixed header) for an
// L4 length of l4len (<= 65535).
inline uint64_t PseudoSum(const uint8_t* p, bool v4, uint8_t proto, size_t l4len) {
  uint64_t acc = v4 ? SumHost(p + 12, 8, 0) : SumHost(p + 8, 32, 0);
  acc += Bswap16(proto);
  acc += Bswap16(static_cast<uint16_t>(l4len));
  return acc;
}

// Recomputes the IPv4 header checksum of p (header length ihl) in place.
inline void SetIpv4Checksum(uint8_t* p, size_t ihl) {
  p[10] = p[11] = 0;
  Wr16(p + 10, static_cast<uint16_t>(~FoldNet(SumHost(p, ihl, 0))));
}

// Where the TCP/UDP checksum of an IPv4 (not a fragment) or IPv6 (no extension header) packet lives:
// its family, protocol, L3 header length and the field's offset in the L4 header. False otherwise.
bool L4ChecksumAt(const uint8_t* p, size_t n, bool* v4, uint8_t* proto, size_t* l3, size_t* off);

// Recomputes the TCP/UDP checksum of such a packet in full, whatever the field held; false when it
// is not such a packet or is truncated.
bool FixL4Checksum(uint8_t* p, size_t n);

// Finishes a CHECKSUM_PARTIAL checksum in place: the field at csumStart+csumOffset holds the
// pseudo-header sum; summing from csumStart to the end and storing the complement completes it (as
// skb_checksum_help does, including 0 -> 0xffff). False when the offsets do not fit in n.
bool CompleteChecksum(uint8_t* p, size_t n, uint16_t csumStart, uint16_t csumOffset);

}  // namespace flannelts
