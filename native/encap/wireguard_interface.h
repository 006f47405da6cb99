#pragma once
// A userspace WireGuard interface as JavaScript configures it and the engine runs it: the protocol's
// device (our key, the peers, their sessions), the handshake worker, the cookie jobs for TypeScript
// and counters of what the encapsulation did with datagrams before the device saw them. Shared by
// the JavaScript object (js/wireguard_interface_js.cc) and the encapsulation (encap/wireguard.h); it
// outlives any one engine.
#include <atomic>
#include <cstdint>
#include <memory>

#include "base/ipaddr.h"
#include "encap/encapsulation.h"
#include "encap/wireguard_cookie_jobs.h"
#include "encap/wireguard_worker.h"
#include "wireguard/device.h"

namespace flannelts {

// What the encapsulation counted; the device counts the rest by wg::Reason.
struct WgEncapCounters {
  std::atomic<uint64_t> rxDatagrams{0};          // every datagram Open saw
  std::atomic<uint64_t> handshakeQueued{0};      // handshake and cookie messages handed to the worker
  std::atomic<uint64_t> handshakeQueueFull{0};   // ... dropped: its queue was full
  std::atomic<uint64_t> initiationsDeferred{0};  // initiations left to the worker by other threads
  std::atomic<uint64_t> cookieJobsDropped{0};    // XChaCha20-Poly1305 jobs JavaScript was too slow to take
  std::atomic<uint64_t> controlUnsent{0};        // datagrams of a control call while no engine ran
};

class WgInterface {
 public:
  explicit WgInterface(const wg::Timing& timing) : device_(timing), cookies_(&counters_.cookieJobsDropped), worker_(device_, cookies_), control_(*this) {}
  WgInterface(const WgInterface&) = delete;
  WgInterface& operator=(const WgInterface&) = delete;

  wg::Device& device() { return device_; }
  CookieJobs& cookies() { return cookies_; }
  HandshakeWorker& worker() { return worker_; }
  WgEncapCounters& counters() { return counters_; }

  // The running engine, between the encapsulation's Start and Stop (one engine at a time).
  void Attach(EncapHost* host) { host_.store(host); }
  // The Output of calls from the control thread (setPeer turning a keepalive on, a cookie reply):
  // sends through the running engine; initiations go to the worker.
  wg::Output& control() { return control_; }
  // Now on the clocks the protocol runs on (monotonic for timers, wall for timestamps).
  static wg::Now Now();

 private:
  class ControlOutput : public wg::Output {
   public:
    explicit ControlOutput(WgInterface& i) : i_(i) {}
    void SendOwn(const wg::Endpoint& to, const uint8_t* data, size_t n) override;
    void SealCookie(const wg::CookieSealJob& job) override { i_.cookies_.Seal(job); }
    void OpenCookie(const wg::CookieOpenJob& job) override { i_.cookies_.Open(job); }
    bool DeferInitiation(const std::shared_ptr<wg::Peer>& peer) override;

   private:
    WgInterface& i_;
  };

  WgEncapCounters counters_;
  wg::Device device_;
  CookieJobs cookies_;
  HandshakeWorker worker_;
  std::atomic<EncapHost*> host_{nullptr};
  ControlOutput control_;
};

// Address conversions between the engine's vocabulary and the protocol's.
wg::Endpoint ToWgEndpoint(const IpAddr& a, uint16_t port);
IpAddr FromWgEndpoint(const wg::Endpoint& e);

}  // namespace flannelts
