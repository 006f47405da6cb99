#pragma once
// The userspace VXLAN VTEP: frames exactly as a Linux vxlan device sends and accepts them (RFC 7348:
// VXLAN header + inner Ethernet frame from our VTEP MAC to the peer's), ARP requests for our VTEP
// address answered, each inner flow on its own outer source port (a send-only socket per flow).
// The engine is the device here, so TTL is left alone.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "base/mac.h"
#include "encap/encapsulation.h"

namespace flannelts {

struct VxlanOptions {
  uint32_t vni = 1;
  Mac mac;  // our VTEP MAC (VtepMAC in the lease)
  // Our VTEP IPv4 address (the lease's network address), whose ARP requests we answer.
  bool hasVtep4 = false;
  uint8_t vtep4[4] = {};
  // The TUN's MTU: inner TCP packets above it that arrive whole (GSO between namespaces) are
  // re-segmented; 0: never.
  size_t innerMtu = 0;
};

// pool4/pool6: the send-only sockets inner flows are spread over (io/udp_conn.h); may be empty.
std::unique_ptr<Encapsulation> MakeVxlan(const VxlanOptions& o, std::vector<int> pool4, std::vector<int> pool6);

}  // namespace flannelts
