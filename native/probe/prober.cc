// The prober thread: enter the namespace, open the raw socket there, then one loop that sends on
// schedule, reads what arrives (with its kernel timestamp), and times out echoes in send order.
#include "prober.h"

#include <netinet/icmp6.h>
#include <linux/icmp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <system_error>

#include "base/clock.h"
#include "base/errors.h"

namespace flannelts {

struct EchoProber::Pending {
  int64_t sentMono = 0;
  int64_t sentReal = 0;
  bool waiting = false;  // sent and not yet ended
  bool replied = false;
};

namespace {

// Identifier and cookie from the kernel's random pool: several probers (of this process or others,
// ping included) may share a namespace, and a raw socket sees all of their ICMP.
void RandomKey(EchoKey* k) {
  uint8_t r[2 + kCookieLen];
  if (getrandom(r, sizeof r, GRND_NONBLOCK) != static_cast<ssize_t>(sizeof r)) {
    // Not seeded yet (early boot): the clock and the thread id still differ between probers.
    const uint64_t x = static_cast<uint64_t>(MonoNs()) ^ (static_cast<uint64_t>(gettid()) << 40);
    for (size_t i = 0; i < sizeof r; i++) r[i] = static_cast<uint8_t>(x >> ((i % 8) * 8));
  }
  k->id = static_cast<uint16_t>(r[0] << 8 | r[1]);
  std::memcpy(k->cookie, r + 2, kCookieLen);
}

// Only the ICMP types MatchEcho can use reach the socket: replies and errors, not the namespace's
// other ICMP (our own requests looped back, other hosts' echoes).
int FilterTypes(int sock, bool v4) {
  if (v4) {
    icmp_filter f{};
    f.data = ~((1u << ICMP_ECHOREPLY) | (1u << ICMP_DEST_UNREACH) | (1u << ICMP_TIME_EXCEEDED) | (1u << ICMP_PARAMETERPROB));
    return setsockopt(sock, SOL_RAW, ICMP_FILTER, &f, sizeof f);
  }
  icmp6_filter f;
  ICMP6_FILTER_SETBLOCKALL(&f);
  for (int t : {ICMP6_ECHO_REPLY, ICMP6_DST_UNREACH, ICMP6_PACKET_TOO_BIG, ICMP6_TIME_EXCEEDED, ICMP6_PARAM_PROB}) ICMP6_FILTER_SETPASS(t, &f);
  return setsockopt(sock, IPPROTO_ICMPV6, ICMP6_FILTER, &f, sizeof f);
}

timespec NsToTimespec(int64_t ns) {
  timespec t{};
  t.tv_sec = static_cast<time_t>(ns / 1000000000);
  t.tv_nsec = static_cast<long>(ns % 1000000000);
  return t;
}

}  // namespace

EchoProber::EchoProber(ProbeOptions o) : o_(std::move(o)) {
  key_.target = o_.target;
  RandomKey(&key_);
  wakeFd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wakeFd_ < 0) {
    const int e = errno;
    if (o_.netnsFd >= 0) close(o_.netnsFd);
    throw SysError("prober: eventfd", e);
  }
  echoes_.resize(o_.count);
}

EchoProber::~EchoProber() {
  if (thread_.joinable()) {
    Abort();
    thread_.join();
  }
  for (int fd : {o_.netnsFd, sock_, wakeFd_})
    if (fd >= 0) close(fd);
}

void EchoProber::Start(std::function<void()> onDone) {
  try {
    thread_ = std::thread([this, onDone] {
      // Process signals go to Node's own threads; none interrupts a wait or lands in a handler here.
      sigset_t all;
      sigfillset(&all);
      pthread_sigmask(SIG_BLOCK, &all, nullptr);
      Run();
      onDone();
    });
  } catch (const std::system_error& e) {
    // No thread (EAGAIN: too many): the run ends before it began, and says why.
    result_.error = std::string("prober: cannot start its thread: ") + e.what();
    onDone();
  }
}

void EchoProber::Abort() {
  abort_.store(true);
  const uint64_t one = 1;
  // Only fails when the counter is full, and then the thread is woken already.
  [[maybe_unused]] ssize_t w = write(wakeFd_, &one, sizeof one);
}

void EchoProber::Join() {
  if (thread_.joinable()) thread_.join();
}

void EchoProber::Run() {
  result_.error = Enter();
  if (result_.error.empty()) Loop();
  // Replies and timeouts arrive out of order; callers read them by sequence.
  std::sort(result_.replies.begin(), result_.replies.end(), [](const EchoReply& a, const EchoReply& b) { return a.seq < b.seq; });
  std::sort(result_.failures.begin(), result_.failures.end(), [](const EchoFailure& a, const EchoFailure& b) { return a.seq < b.seq; });
}

// The thread's name: what /proc/<pid>/task/*/status shows, so a placement check can find and read back
// the prober's CPU (the bench verifies each pod's probe runs where that pod's node is placed).
constexpr char kThreadName[] = "flannelts-probe";

std::string EchoProber::Enter() {
  pthread_setname_np(pthread_self(), kThreadName);
  if (o_.cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(o_.cpu, &set);
    if (const int e = pthread_setaffinity_np(pthread_self(), sizeof set, &set))
      return SysError("cpu " + std::to_string(o_.cpu) + ": pthread_setaffinity_np", e, e == EINVAL ? "not a CPU this process may use" : "").what();
  }
  if (setns(o_.netnsFd, CLONE_NEWNET) != 0) {
    const int e = errno;
    return SysError("netns " + o_.netns + ": setns", e, e == EPERM ? "needs root (CAP_SYS_ADMIN)" : "").what();
  }
  close(o_.netnsFd);
  o_.netnsFd = -1;
  const bool v4 = o_.target.family == 4;
  const std::string what = std::string(v4 ? "raw ICMP" : "raw ICMPv6") + " socket in netns " + o_.netns;
  sock_ = socket(v4 ? AF_INET : AF_INET6, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, v4 ? int{IPPROTO_ICMP} : int{IPPROTO_ICMPV6});
  if (sock_ < 0) {
    const int e = errno;
    return SysError(what, e, e == EPERM ? "needs root (CAP_NET_RAW)" : "").what();
  }
  const int one = 1;
  if (setsockopt(sock_, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one) != 0) return SysError(what + ": SO_TIMESTAMPNS", errno).what();
  if (FilterTypes(sock_, v4) != 0) return SysError(what + ": ICMP type filter", errno).what();
  return "";
}

bool EchoProber::ShouldStop() const {
  return (o_.stopAfterReplies > 0 && result_.replies.size() >= o_.stopAfterReplies) ||
         (o_.stopAfterFailures > 0 && result_.failures.size() >= o_.stopAfterFailures) ||
         (o_.stopAfterErrors > 0 && errors_ >= o_.stopAfterErrors);
}

void EchoProber::Loop() {
  start_ = MonoNs();
  result_.startRealNs = ClockNs(CLOCK_REALTIME);
  uint32_t next = 1;  // the next sequence number to send
  // Sends follow the plan start + (seq-1) x interval, so a late wake-up does not stretch the run.
  auto sendAt = [&](uint32_t seq) { return start_ + static_cast<int64_t>(seq - 1) * o_.intervalNs; };
  for (;;) {
    if (abort_.load()) {
      result_.end = EndReason::kAborted;
      break;
    }
    Drain();
    const int64_t now = MonoNs();
    if (next <= o_.count && now >= sendAt(next) && !ShouldStop()) Send(next++);
    // Deadlines grow with the sequence number (one timeout for all), so the oldest decides.
    for (; pendingFrom_ < result_.sent; pendingFrom_++) {
      const Pending& e = echoes_[pendingFrom_];
      if (e.waiting && now < e.sentMono + o_.timeoutNs) break;
      if (e.waiting) Fail(pendingFrom_ + 1, EchoFailure{});
    }
    if (ShouldStop()) {
      const bool byReplies = o_.stopAfterReplies > 0 && result_.replies.size() >= o_.stopAfterReplies;
      const bool byFailures = o_.stopAfterFailures > 0 && result_.failures.size() >= o_.stopAfterFailures;
      result_.end = byReplies ? EndReason::kReplies : byFailures ? EndReason::kFailures : EndReason::kErrors;
      break;
    }
    if (next > o_.count && pendingFrom_ >= result_.sent) break;  // every echo sent and ended
    int64_t wake = next <= o_.count ? sendAt(next) : INT64_MAX;
    if (pendingFrom_ < result_.sent) wake = std::min(wake, echoes_[pendingFrom_].sentMono + o_.timeoutNs);
    const timespec ts = NsToTimespec(std::max<int64_t>(0, wake - MonoNs()));
    pollfd fds[2] = {{sock_, POLLIN, 0}, {wakeFd_, POLLIN, 0}};
    if (ppoll(fds, 2, &ts, nullptr) < 0 && errno != EINTR) {
      result_.error = SysError("prober: ppoll", errno).what();
      break;
    }
  }
  // Echoes still waiting when the run ended early end as stopped, so sent = replies + failures.
  for (uint32_t i = pendingFrom_; i < result_.sent; i++) {
    if (!echoes_[i].waiting) continue;
    EchoFailure f;
    f.kind = FailureKind::kStopped;
    Fail(i + 1, f);
  }
}

void EchoProber::Send(uint32_t seq) {
  uint8_t buf[kEchoHdrLen + kMaxEchoData];
  const size_t n = BuildEchoRequest(key_, static_cast<uint16_t>(seq), o_.dataLen, buf, sizeof buf);
  sockaddr_storage to;
  const socklen_t toLen = ToSockaddr(o_.target, 0, &to);
  Pending& e = echoes_[seq - 1];
  e.sentMono = MonoNs();
  e.sentReal = ClockNs(CLOCK_REALTIME);  // last, right before sendto, like ping's send time
  const ssize_t r = sendto(sock_, buf, n, 0, reinterpret_cast<const sockaddr*>(&to), toLen);
  const int err = errno;
  result_.sent++;
  e.waiting = true;
  if (r < 0) {
    EchoFailure f;
    f.kind = FailureKind::kSendError;
    f.err = err;
    Fail(seq, f);
  }
}

void EchoProber::Drain() {
  // Our largest reply with the largest IPv4 header fits whole (a truncated one would fail its checksum).
  uint8_t buf[60 + kEchoHdrLen + kMaxEchoData];
  alignas(cmsghdr) char ctrl[CMSG_SPACE(sizeof(timespec))];
  for (;;) {
    sockaddr_storage from{};
    iovec iov{buf, sizeof buf};
    msghdr mh{};
    mh.msg_name = &from;
    mh.msg_namelen = sizeof from;
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = ctrl;
    mh.msg_controllen = sizeof ctrl;
    const ssize_t n = recvmsg(sock_, &mh, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // EAGAIN: all read
    }
    const int64_t rxMono = MonoNs();
    int64_t rxReal = 0;
    for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c != nullptr; c = CMSG_NXTHDR(&mh, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
        timespec t;
        std::memcpy(&t, CMSG_DATA(c), sizeof t);
        rxReal = static_cast<int64_t>(t.tv_sec) * 1000000000 + t.tv_nsec;
      }
    }
    IpAddr from6;
    if (from.ss_family == AF_INET6) {
      from6.family = 6;
      std::memcpy(from6.bytes, &reinterpret_cast<const sockaddr_in6*>(&from)->sin6_addr, 16);
    }
    const EchoMatch m = MatchEcho(key_, buf, std::min<size_t>(static_cast<size_t>(n), sizeof buf), from6);
    if (m.kind == EchoKind::kIgnored || m.seq == 0 || m.seq > result_.sent) continue;
    Settle(m.seq, m, rxReal, rxMono);
  }
}

void EchoProber::Settle(uint32_t seq, const EchoMatch& m, int64_t rxReal, int64_t rxMono) {
  Pending& e = echoes_[seq - 1];
  if (m.kind == EchoKind::kError) {
    if (!e.waiting) return;  // a reply or another failure ended it first
    EchoFailure f;
    f.kind = FailureKind::kIcmpError;
    f.type = m.type;
    f.code = m.code;
    f.mtu = m.mtu;
    f.from = m.from;
    Fail(seq, f);
    return;
  }
  if (!e.waiting) {
    if (e.replied) result_.duplicates++;
    else result_.late++;
    return;
  }
  // The monotonic span to our read bounds the RTT from above; a kernel timestamp outside it means
  // the realtime clock was stepped between the two reads (or none came), so the span stands in.
  const int64_t span = rxMono - e.sentMono;
  int64_t rtt = rxReal - e.sentReal;
  if (rxReal == 0 || rtt <= 0 || rtt > span) rtt = span;
  if (rtt > o_.timeoutNs) {
    result_.late++;
    Fail(seq, EchoFailure{});
    return;
  }
  e.waiting = false;
  e.replied = true;
  result_.replies.push_back(EchoReply{static_cast<uint16_t>(seq), rtt, e.sentMono - start_});
}

void EchoProber::Fail(uint32_t seq, EchoFailure f) {
  Pending& e = echoes_[seq - 1];
  e.waiting = false;
  f.seq = static_cast<uint16_t>(seq);
  f.sentAtNs = e.sentMono - start_;
  if (f.kind == FailureKind::kIcmpError || f.kind == FailureKind::kSendError) errors_++;
  result_.failures.push_back(f);
}

}  // namespace flannelts
