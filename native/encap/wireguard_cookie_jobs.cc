// The cookie job queue; see wireguard_cookie_jobs.h.
#include "encap/wireguard_cookie_jobs.h"

#include "wireguard/crypto.h"

namespace flannelts {

template <typename Job>
void CookieJobs::Push(std::vector<Job>& queue, const Job& job) {
  std::lock_guard<std::mutex> lock(mu_);
  if (Full()) {
    dropped_->fetch_add(1, std::memory_order_relaxed);
    return;
  }
  const bool wasEmpty = seals_.empty() && opens_.empty();
  queue.push_back(job);
  Queued(wasEmpty);
}

void CookieJobs::Seal(const wg::CookieSealJob& job) { Push(seals_, job); }

void CookieJobs::Open(const wg::CookieOpenJob& job) { Push(opens_, job); }

void CookieJobs::Queued(bool wasEmpty) {
  if (wasEmpty && notify_) notify_();
}

void CookieJobs::Take(std::vector<wg::CookieSealJob>* seals, std::vector<wg::CookieOpenJob>* opens) {
  std::lock_guard<std::mutex> lock(mu_);
  seals->swap(seals_);
  opens->swap(opens_);
  seals_.clear();
  opens_.clear();
}

void CookieJobs::SetNotify(std::function<void()> fn) {
  std::lock_guard<std::mutex> lock(mu_);
  notify_ = std::move(fn);
  // Jobs that came while nobody listened: the new listener takes them now.
  if (notify_ && !(seals_.empty() && opens_.empty())) notify_();
}

}  // namespace flannelts
