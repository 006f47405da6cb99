#pragma once
// flannel's udp backend on the wire: the UDP payload is exactly the inner IP packet (flannel's C
// proxy, port 8285). The engine acts as flannel's proxy did, a router at both ends: TTL is lowered
// on the way out and on the way in.
#include <memory>

#include "encap/encapsulation.h"

namespace flannelts {

std::unique_ptr<Encapsulation> MakeFlannelUdp();

}  // namespace flannelts
