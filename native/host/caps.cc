// Least privilege after setup: dropCapabilities(keep) leaves the process with exactly the capabilities in
// `keep` (effective = permitted = keep, inheritable and ambient empty, bounding set = keep), without
// libcap. Capabilities and the bounding set are per thread in Linux and capset(2) only changes the
// calling thread, so the same raw syscalls run in every thread of the process: the calling thread
// directly, every other thread from a signal handler (what libcap's psx does). A thread that has the
// signal blocked cannot be reached; it is reported back, not hidden.
#include "host/caps.h"

#include <dirent.h>
#include <linux/capability.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace flannelts {
namespace {

// Filled before any signal is sent, read by the handler (async-signal-safe: plain loads, raw syscalls).
uint64_t g_keep = 0;
int g_last_cap = 0;
std::atomic<int> g_done{0};
std::atomic<int> g_failed{0};
std::atomic<int> g_first_errno{0};

// Runs in the target thread: bounding set first (needs CAP_SETPCAP, which capset then removes).
int DropInThisThread() {
  for (int cap = 0; cap <= g_last_cap; cap++) {
    if (g_keep & (uint64_t{1} << cap)) continue;
    if (syscall(SYS_prctl, PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) return errno;
  }
  if (syscall(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) return errno;
  __user_cap_header_struct hdr{};
  hdr.version = _LINUX_CAPABILITY_VERSION_3;
  hdr.pid = 0;
  __user_cap_data_struct data[2]{};
  for (int i = 0; i < 2; i++) {
    uint32_t word = static_cast<uint32_t>(g_keep >> (32 * i));
    data[i].effective = word;
    data[i].permitted = word;
    data[i].inheritable = 0;
  }
  if (syscall(SYS_capset, &hdr, data) != 0) return errno;
  return 0;
}

void OnSignal(int) {
  int saved = errno;
  int err = DropInThisThread();
  if (err != 0) {
    g_failed.fetch_add(1);
    int zero = 0;
    g_first_errno.compare_exchange_strong(zero, err);
  }
  g_done.fetch_add(1);
  errno = saved;
}

int LastCap() {
  FILE* f = fopen("/proc/sys/kernel/cap_last_cap", "r");
  int v = CAP_LAST_CAP;
  if (f) {
    if (fscanf(f, "%d", &v) != 1) v = CAP_LAST_CAP;
    fclose(f);
  }
  return v > 63 ? 63 : v;
}

std::vector<pid_t> Tasks() {
  std::vector<pid_t> out;
  DIR* d = opendir("/proc/self/task");
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    out.push_back(static_cast<pid_t>(atoi(e->d_name)));
  }
  closedir(d);
  return out;
}

void SleepMs(int ms) {
  timespec ts{0, ms * 1000000L};
  nanosleep(&ts, nullptr);
}

}  // namespace

int LastCapability() { return LastCap(); }

DroppedCapabilities DropCapabilities(uint64_t keep) {
  g_last_cap = LastCap();
  g_keep = keep;
  g_done = 0;
  g_failed = 0;
  g_first_errno = 0;

  const int sig = SIGRTMIN + 5;
  struct sigaction sa{}, old{};
  sa.sa_handler = OnSignal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  if (sigaction(sig, &sa, &old) != 0) throw std::runtime_error(std::string("sigaction: ") + strerror(errno));

  const pid_t self = static_cast<pid_t>(syscall(SYS_gettid));
  const pid_t pid = getpid();
  std::set<pid_t> signalled{self};
  std::vector<pid_t> unreached;
  int sent = 0;
  // Threads may start while we work (libuv spawns its pool lazily): re-list until no new thread appears.
  for (int round = 0; round < 10; round++) {
    bool fresh = false;
    for (pid_t tid : Tasks()) {
      if (signalled.count(tid)) continue;
      signalled.insert(tid);
      if (syscall(SYS_tgkill, pid, tid, sig) == 0) {
        sent++;
        fresh = true;
      }
    }
    if (!fresh) break;
  }
  // Wait for the handlers (bounded: a thread with the signal blocked never runs it).
  for (int i = 0; i < 200 && g_done.load() < sent; i++) SleepMs(5);
  int handled = g_done.load();
  // Our own thread last, so the signalling above still had any capability it needed.
  int self_err = DropInThisThread();
  // Not the old (default) action: a signal still pending in a thread that blocks it would kill the
  // process if that thread ever unblocked it. Ignoring discards pending ones.
  struct sigaction ign{};
  ign.sa_handler = SIG_IGN;
  sigemptyset(&ign.sa_mask);
  sigaction(sig, &ign, nullptr);
  (void)old;
  if (self_err != 0) throw std::runtime_error(std::string("capset in the calling thread: ") + strerror(self_err));
  if (g_failed.load() > 0) throw std::runtime_error(std::to_string(g_failed.load()) + " thread(s) failed to drop capabilities: " + strerror(g_first_errno.load()));

  // Which threads still hold more than `keep` (e.g. they block the signal): read their CapEff.
  for (pid_t tid : Tasks()) {
    std::string path = "/proc/self/task/" + std::to_string(tid) + "/status";
    FILE* f = fopen(path.c_str(), "r");
    if (!f) continue;
    char line[256];
    while (fgets(line, sizeof line, f)) {
      unsigned long long eff = 0;
      if (sscanf(line, "CapEff: %llx", &eff) == 1) {
        if ((eff & ~keep) != 0) unreached.push_back(tid);
        break;
      }
    }
    fclose(f);
  }
  return DroppedCapabilities{handled + 1, unreached};
}

}  // namespace flannelts
