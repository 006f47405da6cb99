#pragma once
// Why the data plane dropped a packet: one list for the engine, the encapsulations, capture records
// (which carry the index) and JavaScript (dropReasons, the /metrics labels). Append only: the order
// is the capture record's reason byte.
namespace flannelts {

enum Drop : int {
  kDropNoRoute,
  kDropTtlExpired,
  kDropMalformed,
  kDropSpoofedSource,
  kDropUnknownPeer,
  kDropTunWriteError,
  kDropTunReadError,
  kDropSocketSendError,
  kDropSocketRecvError,
  kDropBadVnetHdr,  // virtio_net_hdr from the TUN we cannot honour (offload/vnet_hdr.h OffloadError)
  // Userspace VXLAN only (truncated frames and a missing VNI flag count as kDropMalformed):
  kDropWrongVni,          // a VXLAN frame for another VNI
  kDropUnknownMac,        // inner Ethernet source is not the VTEP MAC of the peer the packet comes from
  kDropWrongDstMac,       // inner Ethernet destination is neither our VTEP MAC nor (for ARP) broadcast
  kDropBadEtherType,      // neither IPv4, IPv6 nor ARP
  kDropArpIgnored,        // ARP that is not a request for our VTEP address (nothing to answer)
  // Userspace WireGuard only (too short, unknown message types and wrong sizes count as kDropMalformed,
  // an inner source outside the sender's allowed IPs as kDropSpoofedSource):
  kDropWgNoEndpoint,          // TX: a peer with no address (none configured, never heard from)
  kDropWgHandshakeQueueFull,  // a handshake message the busy handshake thread could not take
  kDropWgUnknownReceiver,     // a transport message for no session of ours
  kDropWgDecryptFailed,       // a transport message that did not authenticate
  kDropWgReplay,              // a counter seen before, or older than the replay window
  kDropWgExpiredKeypair,      // a transport message on a session older than REJECT_AFTER_TIME
  kDropCount,
};

// "no_route", "ttl_expired", ...; "unknown" outside the list.
const char* DropName(int d);

}  // namespace flannelts
