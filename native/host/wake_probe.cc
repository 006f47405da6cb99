// How much one thread waking another costs on this machine, on the same CPU and across two CPUs: a
// userspace data plane pays it for every hand-off (pod -> engine, engine -> engine, engine -> pod)
// that kernel vxlan, running in the sender's softirq, never makes. On a VM whose idle vCPUs halt at
// once it is tens of microseconds across vCPUs and varies with the host's load, which is what makes
// two bench runs of the same code differ, so the bench prints it next to the machine's details.
//
// WakeProbe(cpuA, cpuB, rounds) (wakeProbe in JavaScript): two threads pinned to cpuA and cpuB pass a
// token through two pipes (as `perf bench sched pipe` does); each round is one write that wakes the
// other thread's blocking read and one back, so a round is two wake-ups. Blocks the calling thread
// for rounds x the round trip (bounded by the rounds limit): a bench tool call, not for the daemon.
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "base/errors.h"
#include "host/wake_probe.h"

namespace flannelts {
namespace {

constexpr int kWarmup = 50;

int PinSelf(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

struct Pipes {
  int there[2] = {-1, -1}, back[2] = {-1, -1};
  ~Pipes() {
    for (int fd : {there[0], there[1], back[0], back[1]})
      if (fd >= 0) close(fd);
  }
};

}  // namespace

WakeRoundTrip WakeProbe(int cpuA, int cpuB, int rounds) {
  Pipes p;
  if (pipe(p.there) != 0 || pipe(p.back) != 0) throw std::runtime_error(SysError("wakeProbe: pipe", errno).what());
  std::atomic<int> err{0};  // the first errno: pinning a thread, or a pipe read/write
  std::vector<int64_t> ns(static_cast<size_t>(rounds));
  // Echo side: reads the token and writes it back until the first side closes its end.
  std::thread echo([&] {
    if (const int e = PinSelf(cpuB)) err.store(e);
    char c;
    while (read(p.there[0], &c, 1) == 1)
      if (write(p.back[1], &c, 1) != 1) break;
  });
  // Timing side, on its own thread too: pinning the JS thread would outlive the call.
  std::thread timer([&] {
    if (const int e = PinSelf(cpuA)) err.store(e);
    char c = 't';
    for (int i = -kWarmup; i < rounds && err.load() == 0; i++) {
      const int64_t t0 = MonoNs();
      if (write(p.there[1], &c, 1) != 1 || read(p.back[0], &c, 1) != 1) {
        err.store(errno ? errno : EIO);
        break;
      }
      if (i >= 0) ns[static_cast<size_t>(i)] = MonoNs() - t0;
    }
    close(p.there[1]);  // ends the echo thread's loop
    p.there[1] = -1;
  });
  timer.join();
  echo.join();
  if (const int e = err.load()) throw std::runtime_error(SysError("wakeProbe: CPUs " + std::to_string(cpuA) + "/" + std::to_string(cpuB), e).what());
  std::sort(ns.begin(), ns.end());
  return WakeRoundTrip{static_cast<double>(ns[ns.size() / 2]) / 1000.0, static_cast<double>(ns[ns.size() * 9 / 10]) / 1000.0};
}

}  // namespace flannelts
