#pragma once
// The XChaCha20-Poly1305 work of WireGuard's cookie replies, which OpenSSL cannot do: the protocol
// core hands out jobs (wireguard/cookie.h), TypeScript carries them out with libsodium and hands the
// answers back to the device. Queued by any thread, taken by JavaScript, which is told through
// `notify` when the queue stops being empty; bounded, so a flood costs a counter, never memory.
#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <vector>

#include "wireguard/cookie.h"

namespace flannelts {

class CookieJobs {
 public:
  static constexpr size_t kMax = 256;

  // dropped: counts jobs refused while the queue was full.
  explicit CookieJobs(std::atomic<uint64_t>* dropped) : dropped_(dropped) {}
  void Seal(const wg::CookieSealJob& job);
  void Open(const wg::CookieOpenJob& job);
  void Take(std::vector<wg::CookieSealJob>* seals, std::vector<wg::CookieOpenJob>* opens);
  // Called under the queue's lock, so clearing it waits for a call in progress; must not block.
  void SetNotify(std::function<void()> fn);

 private:
  bool Full() const { return seals_.size() + opens_.size() >= kMax; }
  template <typename Job>
  void Push(std::vector<Job>& queue, const Job& job);
  void Queued(bool wasEmpty);

  std::mutex mu_;
  std::vector<wg::CookieSealJob> seals_;
  std::vector<wg::CookieOpenJob> opens_;
  std::function<void()> notify_;
  std::atomic<uint64_t>* dropped_;
};

}  // namespace flannelts
