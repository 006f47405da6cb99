#pragma once
// Network-order (big-endian) loads and stores over byte spans, and a 16-bit byte swap. Header fields
// are read and written through these, never through casts, so unaligned packet data is fine.
#include <cstdint>

namespace flannelts {

inline uint16_t Rd16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
inline uint32_t Rd32(const uint8_t* p) { return static_cast<uint32_t>(p[0]) << 24 | p[1] << 16 | p[2] << 8 | p[3]; }
inline void Wr16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
inline void Wr32(uint8_t* p, uint32_t v) {
  Wr16(p, static_cast<uint16_t>(v >> 16));
  Wr16(p + 2, static_cast<uint16_t>(v));
}
inline uint16_t Bswap16(uint16_t v) { return static_cast<uint16_t>(v << 8 | v >> 8); }

}  // namespace flannelts
