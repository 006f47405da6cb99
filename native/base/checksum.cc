// The out-of-line parts of the checksum helpers; see checksum.h.
#include "base/checksum.h"

#include "base/ip_packet.h"

#include <algorithm>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace flannelts {

namespace checksum_detail {

#if defined(__x86_64__)
// Each 32-byte load is split into its low and high 16-bit words (as 32-bit lanes) and summed
// lane-wise; the one's-complement sum is the plain sum of all 16-bit words folded, so lanes are added
// up into the 64-bit accumulator at the end. A lane gains < 2^16 per step, so blocks of 16 Ki steps
// (512 KiB) cannot overflow it. The checksum of every TX segment is on the sending node's critical
// path (~11 % of that vCPU in the tcp1 profile with the scalar loop).
__attribute__((target("avx2"))) size_t SumAvx2(const uint8_t*& p, size_t n, uint64_t& acc) {
  const __m256i low = _mm256_set1_epi32(0xffff);
  while (n >= 64) {
    const size_t steps = std::min<size_t>(n / 64, 16384);
    __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
    for (size_t i = 0; i < steps; i++, p += 64) {
      const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
      const __m256i y = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32));
      s0 = _mm256_add_epi32(s0, _mm256_and_si256(x, low));
      s1 = _mm256_add_epi32(s1, _mm256_srli_epi32(x, 16));
      s2 = _mm256_add_epi32(s2, _mm256_and_si256(y, low));
      s3 = _mm256_add_epi32(s3, _mm256_srli_epi32(y, 16));
    }
    n -= steps * 64;
    alignas(32) uint32_t lanes[4][8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(lanes[0]), s0);
    _mm256_store_si256(reinterpret_cast<__m256i*>(lanes[1]), s1);
    _mm256_store_si256(reinterpret_cast<__m256i*>(lanes[2]), s2);
    _mm256_store_si256(reinterpret_cast<__m256i*>(lanes[3]), s3);
    for (const auto& l : lanes)
      for (uint32_t v : l) acc += v;
  }
  return n;
}

const bool kHaveAvx2 = __builtin_cpu_supports("avx2");
#else
size_t SumAvx2(const uint8_t*&, size_t n, uint64_t&) { return n; }
const bool kHaveAvx2 = false;
#endif

}  // namespace checksum_detail

bool L4ChecksumAt(const uint8_t* p, size_t n, bool* v4, uint8_t* proto, size_t* l3, size_t* off) {
  if (n < 20) return false;
  *v4 = (p[0] >> 4) == 4;
  if (*v4) {
    *l3 = (p[0] & 0x0fu) * 4u;
    *proto = p[9];
    if (*l3 < 20 || (Rd16(p + 6) & 0x3fff)) return false;
  } else {
    *l3 = 40;
    if (n < 40) return false;
    *proto = p[6];
  }
  if (*proto != kProtoTcp && *proto != kProtoUdp) return false;
  *off = *proto == kProtoTcp ? 16 : 6;
  return n >= *l3 + *off + 2;
}

bool FixL4Checksum(uint8_t* p, size_t n) {
  bool v4;
  uint8_t proto;
  size_t l3, off;
  if (!L4ChecksumAt(p, n, &v4, &proto, &l3, &off)) return false;
  Wr16(p + l3 + off, FoldNet(PseudoSum(p, v4, proto, n - l3)));
  return CompleteChecksum(p, n, static_cast<uint16_t>(l3), static_cast<uint16_t>(off));
}

bool CompleteChecksum(uint8_t* p, size_t n, uint16_t csumStart, uint16_t csumOffset) {
  if (static_cast<size_t>(csumStart) + csumOffset + 2 > n) return false;
  uint16_t c = static_cast<uint16_t>(~FoldNet(SumHost(p + csumStart, n - csumStart, 0)));
  if (c == 0) c = 0xffff;  // CSUM_MANGLED_0: a UDP checksum of 0 would mean "none"
  Wr16(p + csumStart + csumOffset, c);
  return true;
}

}  // namespace flannelts
