#pragma once
// WireGuard's handshake thread: handshake and cookie messages the data threads received, and
// initiations they asked for, are carried out here, so X25519 (and a flood of forged initiations)
// never costs a data thread. Messages wait in a bounded ring (wireguard-go's 1024); when it is an
// eighth full the device is under load and initiations need a cookie (MAC2), as in wireguard-go, for
// a second after. Started with the engine, joined when it closes (Encapsulation::Start / Stop).
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "encap/encapsulation.h"
#include "encap/wireguard_cookie_jobs.h"
#include "wireguard/device.h"

namespace flannelts {

class HandshakeWorker {
 public:
  static constexpr size_t kDepth = 1024;
  static constexpr int64_t kUnderLoadFor = 1000000000;  // ns a busy queue keeps the device under load

  HandshakeWorker(wg::Device& device, CookieJobs& cookies) : device_(device), cookies_(cookies), ring_(kDepth) {}
  ~HandshakeWorker() { Stop(); }
  HandshakeWorker(const HandshakeWorker&) = delete;
  HandshakeWorker& operator=(const HandshakeWorker&) = delete;

  // Starts the thread; what it sends goes out through host until Stop.
  void Start(EncapHost& host);
  // Joins the thread; messages still queued are dropped (counted as handshake_queue_full).
  void Stop();

  // A data thread: copies one handshake or cookie message (n <= 148) in; false when the ring is full.
  bool Enqueue(const uint8_t* msg, size_t n, const wg::Endpoint& from);
  // Any thread, under the peer's lock: an initiation to make (the device keeps one per peer pending).
  void RequestInitiation(std::shared_ptr<wg::Peer> peer);
  // Messages dropped at Stop.
  uint64_t abandoned() const { return abandoned_; }

 private:
  struct Slot {
    uint8_t msg[wg::kInitiationSize];
    uint16_t len;
    wg::Endpoint from;
  };
  // What the worker sends on its own; it may do X25519 itself, so it never defers an initiation.
  class Out : public wg::Output {
   public:
    Out(EncapHost& host, CookieJobs& cookies) : host_(host), cookies_(cookies) {}
    void SendOwn(const wg::Endpoint& to, const uint8_t* data, size_t n) override;
    void SealCookie(const wg::CookieSealJob& job) override { cookies_.Seal(job); }
    void OpenCookie(const wg::CookieOpenJob& job) override { cookies_.Open(job); }

   private:
    EncapHost& host_;
    CookieJobs& cookies_;
  };
  static constexpr size_t kBatch = 32;  // messages taken out of the ring per lock

  void Run(EncapHost* host);

  wg::Device& device_;
  CookieJobs& cookies_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Slot> ring_;
  size_t head_ = 0, count_ = 0;
  std::vector<std::shared_ptr<wg::Peer>> initiations_;
  bool stop_ = false;
  std::thread thread_;
  int64_t underLoadUntil_ = 0;  // the worker's own
  uint64_t abandoned_ = 0;
};

}  // namespace flannelts
