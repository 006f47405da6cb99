// The handshake thread; see wireguard_worker.h.
#include "encap/wireguard_worker.h"

#include <pthread.h>

#include <cstring>

#include "base/clock.h"
#include "encap/wireguard_interface.h"

namespace flannelts {

void HandshakeWorker::Out::SendOwn(const wg::Endpoint& to, const uint8_t* data, size_t n) {
  host_.SendOwn(FromWgEndpoint(to), to.port, data, n, 0);
}

void HandshakeWorker::Start(EncapHost& host) {
  std::lock_guard<std::mutex> lock(mu_);
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this, &host] { Run(&host); });
  pthread_setname_np(thread_.native_handle(), "flannelts-wghs");
}

void HandshakeWorker::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::lock_guard<std::mutex> lock(mu_);
  abandoned_ += count_;
  head_ = count_ = 0;
  initiations_.clear();
}

bool HandshakeWorker::Enqueue(const uint8_t* msg, size_t n, const wg::Endpoint& from) {
  if (n > sizeof(Slot::msg)) return false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (count_ == ring_.size() || stop_) return false;
    Slot& s = ring_[(head_ + count_) % ring_.size()];
    std::memcpy(s.msg, msg, n);
    s.len = static_cast<uint16_t>(n);
    s.from = from;
    count_++;
  }
  cv_.notify_one();
  return true;
}

void HandshakeWorker::RequestInitiation(std::shared_ptr<wg::Peer> peer) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    initiations_.push_back(std::move(peer));
  }
  cv_.notify_one();
}

void HandshakeWorker::Run(EncapHost* host) {
  Out out(*host, cookies_);
  std::vector<std::shared_ptr<wg::Peer>> initiations;
  Slot batch[kBatch];
  for (;;) {
    size_t n = 0;
    bool underLoad = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stop_ || count_ > 0 || !initiations_.empty(); });
      if (stop_) return;
      initiations.swap(initiations_);
      // wireguard-go: a queue an eighth full means load; initiations then need a cookie for a second.
      const int64_t mono = MonoNs();
      if (count_ >= ring_.size() / 8) underLoadUntil_ = mono + kUnderLoadFor;
      underLoad = mono < underLoadUntil_;
      for (; n < kBatch && count_ > 0; n++, count_--) {
        batch[n] = ring_[head_];
        head_ = (head_ + 1) % ring_.size();
      }
    }
    const wg::Now now = WgInterface::Now();
    for (const std::shared_ptr<wg::Peer>& p : initiations) device_.Initiate(*p, now, out);
    initiations.clear();
    for (size_t i = 0; i < n; i++) device_.Receive(batch[i].msg, batch[i].len, batch[i].from, now, underLoad, out);
    // A retransmit (or session) timer armed here may be earlier than what the ticking thread sleeps for.
    if (device_.TakeLowered()) host->RequestTick();
  }
}

}  // namespace flannelts
