// The interface's control-side Output and the address conversions; see wireguard_interface.h.
#include "encap/wireguard_interface.h"

#include <time.h>

#include <cstring>

#include "base/clock.h"

namespace flannelts {

wg::Now WgInterface::Now() { return wg::Now{MonoNs(), ClockNs(CLOCK_REALTIME)}; }

void WgInterface::ControlOutput::SendOwn(const wg::Endpoint& to, const uint8_t* data, size_t n) {
  EncapHost* host = i_.host_.load();
  if (!host) {
    i_.counters_.controlUnsent.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  host->SendOwn(FromWgEndpoint(to), to.port, data, n, 0);
}

bool WgInterface::ControlOutput::DeferInitiation(const std::shared_ptr<wg::Peer>& peer) {
  // The worker makes it once it runs (queued until the engine starts).
  i_.worker_.RequestInitiation(peer);
  i_.counters_.initiationsDeferred.fetch_add(1, std::memory_order_relaxed);
  return true;
}

wg::Endpoint ToWgEndpoint(const IpAddr& a, uint16_t port) {
  wg::Endpoint e;
  e.family = a.family;
  std::memcpy(e.addr, a.bytes, sizeof e.addr);
  e.port = port;
  return e;
}

IpAddr FromWgEndpoint(const wg::Endpoint& e) {
  IpAddr a;
  a.family = e.family;
  std::memcpy(a.bytes, e.addr, sizeof a.bytes);
  return a;
}

}  // namespace flannelts
