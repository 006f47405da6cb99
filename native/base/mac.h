#pragma once
// An Ethernet MAC address (the VTEP MACs of VXLAN leases): parse, format, compare.
#include <cstddef>
#include <cstdint>
#include <string>

namespace flannelts {

struct Mac {
  uint8_t b[6] = {};
  bool operator==(const Mac& o) const;
  bool operator!=(const Mac& o) const { return !(*this == o); }
  bool IsZero() const;
};
// "aa:bb:cc:dd:ee:ff" (also '-' separated, any case); false on anything else.
bool ParseMac(const char* s, size_t n, Mac* out);
std::string FormatMac(const Mac& m);  // lowercase, colon separated

}  // namespace flannelts
