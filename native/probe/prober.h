#pragma once
// One prober run on its own thread: it enters the pod's network namespace (setns affects only the
// calling thread, so neither the JS thread nor a libuv pool thread may do it), opens a raw ICMP socket
// there (the socket stays in that namespace), sends `count` echoes every `interval`, and ends each one
// as a reply with its RTT or as one failure. Raw sockets rather than ICMP datagram sockets: those fail
// for root in a new namespace (ping_group_range "1 0") unless we rewrite the pod's sysctl, and they
// report ICMP errors only through IP_RECVERR; entering a namespace needs root anyway.
//
// RTT = kernel receive timestamp (SO_TIMESTAMPNS) - CLOCK_REALTIME read right before sendto, as ping
// measures it, so a thread woken late does not add its wake-up to the figure.
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "base/ipaddr.h"
#include "echo.h"

namespace flannelts {

constexpr uint32_t kMaxEchoes = 65535;  // sequence numbers 1..65535 never wrap

struct ProbeOptions {
  std::string netns;  // for messages
  int netnsFd = -1;   // an open network namespace file; the run owns it
  IpAddr target;
  uint32_t count = 1;
  int64_t intervalNs = 0;
  int64_t timeoutNs = 0;
  uint32_t dataLen = kDefaultEchoData;  // data bytes per echo (ping -s)
  int cpu = -1;                    // pin the prober thread there; -1 = no pinning
  uint32_t stopAfterReplies = 0;   // end the run once this many replies arrived; 0 = never
  uint32_t stopAfterFailures = 0;  // end the run once this many echoes failed; 0 = never
  // End the run once this many echoes were answered with an ICMP error or refused by sendto: answers,
  // unlike silence, that say the path is not there (a timeout does not count); 0 = never.
  uint32_t stopAfterErrors = 0;
};

struct EchoReply {
  uint16_t seq;
  int64_t rttNs;
  int64_t sentAtNs;  // since the run's first send (monotonic)
};

enum class FailureKind : uint8_t {
  kTimeout,    // no answer within the timeout
  kIcmpError,  // an ICMP error quoting the request (type, code, from, mtu)
  kSendError,  // sendto failed (err)
  kStopped,    // still waiting when the run ended early (abort or a stop-after count)
};

struct EchoFailure {
  uint16_t seq = 0;
  FailureKind kind = FailureKind::kTimeout;
  int64_t sentAtNs = 0;
  uint8_t type = 0, code = 0;
  uint32_t mtu = 0;
  IpAddr from;
  int err = 0;
};

enum class EndReason : uint8_t { kDone, kReplies, kFailures, kErrors, kAborted };

struct ProbeResult {
  std::string error;  // the run could not start (pinning, setns, socket): nothing was sent
  uint32_t sent = 0;  // echoes attempted = replies + failures
  int64_t startRealNs = 0;  // CLOCK_REALTIME of the first send: sentAtNs + rttNs from here is wall-clock time
  std::vector<EchoReply> replies;     // by seq
  std::vector<EchoFailure> failures;  // by seq
  uint32_t duplicates = 0;  // further replies to an echo already answered
  uint32_t late = 0;        // replies after their echo's timeout (the echo counts as a timeout)
  EndReason end = EndReason::kDone;
};

class EchoProber {
 public:
  // Takes the options' netns descriptor. Throws SysError when the wake-up eventfd cannot be made.
  explicit EchoProber(ProbeOptions o);
  ~EchoProber();
  EchoProber(const EchoProber&) = delete;
  EchoProber& operator=(const EchoProber&) = delete;

  // Starts the thread; onDone runs on it once the result is final (or at once, with result().error
  // set, when no thread can be made). Once only.
  void Start(std::function<void()> onDone);
  // Ends the run early from any thread (also before Start); unanswered echoes become kStopped.
  void Abort();
  // Waits for the thread; the result may be read afterwards.
  void Join();
  const ProbeResult& result() const { return result_; }

 private:
  struct Pending;
  void Run();
  std::string Enter();  // pin, setns, socket; returns an error message or ""
  void Loop();
  void Send(uint32_t seq);
  void Drain();
  void Settle(uint32_t seq, const EchoMatch& m, int64_t rxReal, int64_t rxMono);
  void Fail(uint32_t seq, EchoFailure f);
  bool ShouldStop() const;

  ProbeOptions o_;
  EchoKey key_;
  int sock_ = -1;
  int wakeFd_ = -1;
  std::atomic<bool> abort_{false};
  std::thread thread_;
  ProbeResult result_;
  std::vector<Pending> echoes_;  // index seq - 1
  uint32_t pendingFrom_ = 0;     // no echo below this index is still waiting
  uint32_t errors_ = 0;          // failures that were ICMP errors or sendto errors
  int64_t start_ = 0;            // monotonic time of the first send
};

}  // namespace flannelts
