// Drop reason names, in enum order; see drop_reasons.h.
#include "base/drop_reasons.h"

namespace flannelts {

const char* DropName(int d) {
  static const char* const names[kDropCount] = {
      "no_route",          "ttl_expired",       "malformed",          "spoofed_source",    "unknown_peer",
      "tun_write_error",   "tun_read_error",    "socket_send_error",  "socket_recv_error", "bad_vnet_hdr",
      "wrong_vni",         "unknown_mac",       "wrong_dst_mac",      "bad_ethertype",     "arp_ignored",
      "wg_no_endpoint",    "wg_handshake_queue_full", "wg_unknown_receiver", "wg_decrypt_failed", "wg_replay",
      "wg_expired_keypair",
  };
  return d >= 0 && d < kDropCount ? names[d] : "unknown";
}

}  // namespace flannelts
