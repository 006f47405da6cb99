#pragma once
// A raw AF_NETLINK datagram socket: bytes in, bytes out. The rtnetlink codec lives in TypeScript
// (src/netlink/: pure, tested against recorded kernel bytes); this only owns the file descriptor and,
// while subscribed, the thread that reads multicast notifications. Control plane: the calls are
// synchronous on purpose, the kernel answers rtnetlink requests immediately.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/errors.h"

namespace flannelts {

// A failed netlink operation: its errno and which operation ("socket", "send", "recv", ...); the
// message reads "netlink <op>: ENAME (text)".
class NetlinkError : public SysError {
 public:
  NetlinkError(const std::string& op, int err) : SysError("netlink " + op, err), op_(op) {}
  const std::string& op() const { return op_; }

 private:
  std::string op_;
};

class NetlinkSocket {
 public:
  // One datagram from the subscription thread, or (data empty) a receive error.
  using Sink = std::function<void(std::vector<uint8_t>&& data, int err)>;

  // Opens and binds (groups: multicast groups to join). Throws NetlinkError.
  NetlinkSocket(int protocol, uint32_t groups);
  ~NetlinkSocket();
  NetlinkSocket(const NetlinkSocket&) = delete;
  NetlinkSocket& operator=(const NetlinkSocket&) = delete;

  uint32_t pid() const { return pid_; }
  bool closed() const { return fd_ < 0; }
  bool subscribed() const { return thread_.joinable(); }

  // To the kernel, whole. Throws NetlinkError (EBADF once closed).
  void Send(const uint8_t* p, size_t n);
  // One datagram, grown to whatever size the kernel has; nothing when timeoutMs passed (negative:
  // wait for ever). Throws NetlinkError (EBUSY while subscribed: the thread owns the reads).
  std::optional<std::vector<uint8_t>> Recv(int timeoutMs);
  // Starts the thread that hands every datagram to sink (on that thread) until Unsubscribe/Close.
  // ENOBUFS (the kernel dropped notifications) is handed on and reading goes on; any other error
  // ends the thread. done runs on the thread as it ends, however it ends. Throws NetlinkError (EBUSY
  // when already subscribed).
  void Subscribe(Sink sink, std::function<void()> done);
  // Stops and joins the subscription thread; idempotent.
  void Unsubscribe();
  // Unsubscribe, then close the fd; idempotent.
  void Close();

 private:
  void ReadLoop(const Sink& sink);
  int fd_ = -1;
  int stopFd_ = -1;
  uint32_t pid_ = 0;
  std::thread thread_;
  std::vector<uint8_t> buf_;
};

}  // namespace flannelts
