// MAC address text and comparison; see mac.h.
#include "base/mac.h"

#include <cstring>

namespace flannelts {

namespace {
int Hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

bool Mac::operator==(const Mac& o) const { return std::memcmp(b, o.b, 6) == 0; }
bool Mac::IsZero() const {
  for (uint8_t x : b)
    if (x) return false;
  return true;
}

bool ParseMac(const char* s, size_t n, Mac* out) {
  if (n != 17) return false;
  const char sep = s[2];
  if (sep != ':' && sep != '-') return false;
  for (int i = 0; i < 6; i++) {
    const int hi = Hex(s[i * 3]), lo = Hex(s[i * 3 + 1]);
    if (hi < 0 || lo < 0) return false;
    if (i < 5 && s[i * 3 + 2] != sep) return false;
    out->b[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

std::string FormatMac(const Mac& m) {
  static const char kHex[] = "0123456789abcdef";
  std::string out(17, ':');
  for (int i = 0; i < 6; i++) {
    out[i * 3] = kHex[m.b[i] >> 4];
    out[i * 3 + 1] = kHex[m.b[i] & 15];
  }
  return out;
}

}  // namespace flannelts
