#pragma once
// WireGuard as the engine's third wire format, over the protocol core (wireguard/device.h): every
// inner segment leaves as a transport message (16-byte header in the head room, padding and tag in
// the tail room), sealed in place by the thread that read it; transport messages are opened in place
// by the thread that received them; handshake and cookie messages, and the initiations the data
// threads would otherwise make, go to the handshake worker (wireguard_worker.h), so X25519 never runs
// on a data thread. The engine is a device here: no TTL decrement, and no outer-source check, since a
// session authenticates every datagram (and a peer may roam); a peer's allowed IPs (its routes in the
// engine's table) replace the inner-source check through Admit.
#include <memory>

#include "encap/encapsulation.h"
#include "encap/wireguard_interface.h"

namespace flannelts {

// fd4/fd6: the engine's listening sockets (fd6 -1: none), the ones a peer's current endpoint is sent
// to from.
std::unique_ptr<Encapsulation> MakeWireGuard(std::shared_ptr<WgInterface> iface, int fd4, int fd6);

}  // namespace flannelts
