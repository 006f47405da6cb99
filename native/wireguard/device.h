#pragma once
// The WireGuard protocol of one interface, with no sockets, threads or TUN of its own: our static
// key, the peers by public key, the receiver-index table, the cookie checker and the reason counters.
// The engine (or a test) drives it with four calls and gives it one Output for what it sends on its
// own:
//   Receive(datagram, from, now)  every UDP datagram; decrypts transport data in place
//   Seal(peer, buffer, now)       every inner packet routed to a peer: send now, or queued for a handshake
//   Tick(now) / NextDeadline()    the timers (rekey, retransmit, keepalive, key zeroing)
//   CompleteCookieSeal / ConsumeCookie   the answers of the XChaCha20-Poly1305 jobs (TypeScript side)
// Time always comes in as an argument (Now), so tests run the whole protocol on a fake clock.
// Thread-safety: every call may come from any thread; a peer's state is behind its own lock, the
// tables behind reader/writer locks. Output is called with a peer's lock held and must not call back.
// The private key is set before traffic flows (flannel never changes a running device's key).
#include <array>
#include <atomic>
#include <climits>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>
#include <vector>

#include "cookie.h"
#include "messages.h"
#include "noise.h"
#include "peer.h"
#include "timers.h"

namespace flannelts {
namespace wg {

struct Now {
  int64_t mono = 0;  // ns, for every timer and age
  int64_t wall = 0;  // ns since the epoch, for handshake timestamps and last-handshake times
};

// Everything the protocol sends without a packet from the TUN asking for it.
class Output {
 public:
  virtual ~Output() = default;
  // A complete datagram for `to`: handshake initiation/response, keepalive, queued data after a
  // handshake, a cookie reply.
  virtual void SendOwn(const Endpoint& to, const uint8_t* data, size_t n) = 0;
  // XChaCha20-Poly1305 work for the TypeScript side (cookie.h); answered with CompleteCookieSeal /
  // ConsumeCookie. Best effort: an unanswered job costs the initiator one retry.
  virtual void SealCookie(const CookieSealJob& job) = 0;
  virtual void OpenCookie(const CookieOpenJob& job) = 0;
  // An initiation to `peer` is due. true: the caller took the request and will have it made by
  // Device::Initiate on another thread (the engine keeps X25519 off its data threads); false (the
  // default): make it here and now. At most one request per peer is outstanding.
  virtual bool DeferInitiation(const std::shared_ptr<Peer>& peer) { return false; }
};

// Why a datagram or packet went where it went; every datagram ends in exactly one of these, counted.
enum class Reason : uint8_t {
  kData,             // transport data, decrypted: the inner packet is for the TUN
  kKeepalive,        // an empty transport message: handled
  kInitiation,       // a valid initiation: answered with a response
  kResponse,         // a valid response: session up
  kCookieReply,      // a cookie reply from a peer we initiated to: opened by TypeScript
  kCookieSent,       // under load without a valid MAC2: answered with a cookie reply instead
  kInitiationCrossed,// the peer's initiation crossed ours and our key is the greater: it answers ours
  kTooShort,         // shorter than any message (32 bytes)
  kUnknownType,
  kBadLength,        // a handshake or cookie message of the wrong size
  kBadMac1,
  kUnknownReceiver,  // no session or handshake of ours has that index
  kExpiredKeypair,   // older than REJECT_AFTER_TIME
  kDecryptFailed,    // transport data that did not authenticate
  kReplay,           // a counter seen before or older than the window
  kStaticDecrypt,    // an initiation not for our key
  kUnknownPeer,      // an initiation from a key we have no peer for
  kTimestampDecrypt,
  kHandshakeReplay,  // an initiation whose timestamp is not newer than the last one
  kHandshakeFlood,   // a second initiation within 20 ms
  kHandshakeState,   // a response for a handshake we are not waiting for
  kResponseDecrypt,
  kDhFailed,
  kCookieUnexpected, // a cookie reply for a peer we sent no handshake to
  // Transmit side
  kSent,             // sealed; send it
  kQueued,           // waits for a handshake
  kQueueFull,        // a queued packet dropped for a newer one
  kGaveUp,           // a queued packet dropped when the handshake gave up
  kNoEndpoint,       // a peer we have no address for
  kTooBig,           // the buffer has no room for header, padding and tag
  kKeepaliveSent,    // an empty transport message we sent (persistent or passive keepalive)
  kCount
};
const char* ReasonName(Reason r);

enum class Verdict : uint8_t { kInner, kHandled, kDrop, kSend, kQueued };

struct RxResult {
  Verdict verdict = Verdict::kDrop;
  Reason reason = Reason::kTooShort;
  std::shared_ptr<Peer> peer;  // the authenticated sender (kInner, kHandled for its messages)
  size_t offset = 0;           // kInner: the decrypted packet (with WireGuard's zero padding)
  size_t length = 0;
};

struct TxResult {
  Verdict verdict = Verdict::kDrop;
  Reason reason = Reason::kNoEndpoint;
  size_t length = 0;  // kSend: datagram length from the buffer's start
  Endpoint to;
};

class Device {
 public:
  // rng: nullptr for the system's (OpenSSL); a test's is not owned and must outlive the Device.
  explicit Device(const Timing& timing = Timing::Spec(), RandomSource* rng = nullptr);
  ~Device();

  bool SetPrivateKey(const uint8_t priv[kKeyLen]);  // drops every session when the key changes
  const uint8_t* PublicKey() const { return identity_.pub; }
  bool HasPrivateKey() const { return hasKey_; }
  void SetMtu(uint32_t mtu) { mtu_ = mtu; }  // padding never goes past the device MTU
  const Timing& timing() const { return timing_; }

  // Creates or updates a peer (PSK, endpoint, keepalive); turning the keepalive on sends one.
  std::shared_ptr<Peer> SetPeer(const PeerConfig& cfg, const Now& now, Output& out);
  bool RemovePeer(const uint8_t pub[kKeyLen]);
  std::shared_ptr<Peer> FindPeer(const uint8_t pub[kKeyLen]) const;
  std::vector<std::shared_ptr<Peer>> Peers() const;

  // One datagram from `from`. Transport data is decrypted in place (kInner: d[offset..offset+length)).
  // underLoad: the caller's handshake queue is busy; initiations then need a valid MAC2 (cookie).
  RxResult Receive(uint8_t* d, size_t n, const Endpoint& from, const Now& now, bool underLoad, Output& out);

  // buf[kTransportHeader .. +innerLen) holds the inner packet; on kSend buf[0..length) is the datagram
  // (header, ciphertext padded to 16, tag), so cap must leave room for padding and the tag.
  TxResult Seal(Peer& peer, uint8_t* buf, size_t innerLen, size_t cap, const Now& now, Output& out);

  void Tick(const Now& now, Output& out);
  int64_t NextDeadline() const;  // INT64_MAX when nothing is pending (visits every peer)
  // A lower bound of NextDeadline() kept up to date as timers are armed, without visiting the peers
  // (the engine's poll timeout). Tick makes it exact again.
  int64_t EarliestDeadline() const { return earliest_.load(std::memory_order_relaxed); }
  // Whether a timer was armed earlier than EarliestDeadline() was since the last call: the thread
  // that ticks may be asleep with a later timeout and must be woken.
  bool TakeLowered() { return lowered_.load(std::memory_order_relaxed) && lowered_.exchange(false); }
  // Makes an initiation that Output::DeferInitiation took (on the thread allowed to do X25519).
  void Initiate(Peer& peer, const Now& now, Output& out);

  bool CompleteCookieSeal(const CookieSealJob& job, const uint8_t sealed[kMacLen + kTagLen], Output& out);
  bool ConsumeCookie(const uint8_t peer[kKeyLen], const uint8_t cookie[kMacLen], const uint8_t aad[kMacLen], const Now& now);

  uint64_t Count(Reason r) const { return counts_[static_cast<size_t>(r)].load(std::memory_order_relaxed); }

 private:
  // A peer's lock; on release the peer's next timer deadline is published to earliest_.
  class Locked {
   public:
    Locked(Device& d, Peer& p) : d_(d), p_(p), g_(p.mu_) {}
    ~Locked() { d_.Publish(p_, true); }

   private:
    Device& d_;
    Peer& p_;
    std::lock_guard<std::mutex> g_;
  };
  struct IndexEntry {
    std::weak_ptr<Peer> peer;
    KeypairRef keypair;  // null: a handshake in progress
  };
  using Key = std::array<uint8_t, kKeyLen>;

  RxResult Drop(Reason r);
  RxResult Handled(Reason r, std::shared_ptr<Peer> peer);
  void CountReason(Reason r) { counts_[static_cast<size_t>(r)].fetch_add(1, std::memory_order_relaxed); }
  int64_t Jitter();
  void Random(uint8_t* p, size_t n);

  // device_handshake.cc
  RxResult ReceiveInitiation(uint8_t* d, const Endpoint& from, const Now& now, bool underLoad, Output& out);
  bool KeepOwnInitiation(const Peer& p, const Endpoint& from, const Now& now) const;
  RxResult ReceiveResponse(uint8_t* d, const Endpoint& from, const Now& now, bool underLoad, Output& out);
  RxResult ReceiveCookieReply(uint8_t* d, Output& out);
  bool NeedsCookie(uint8_t* d, size_t n, const Endpoint& from, const Now& now, bool underLoad, Output& out);
  template <typename Make>
  bool NewHandshakeMessage(Peer& p, uint8_t* msg, size_t n, const Now& now, Make make);
  void SendInitiation(Peer& p, const Now& now, bool isRetry, Output& out);
  void MakeInitiation(Peer& p, const Now& now, Output& out);
  void Publish(const Peer& p, bool wake);
  void SendResponse(Peer& p, const Now& now, Output& out);
  void BeginSession(Peer& p, const Now& now);
  bool ReceivedWithKeypair(Peer& p, const KeypairRef& kp);
  void ZeroAndFlushAll(Peer& p);

  // device_transport.cc
  RxResult ReceiveData(uint8_t* d, size_t n, const Endpoint& from, const Now& now, Output& out);
  bool Usable(const KeypairRef& kp, const Now& now) const;
  void Stage(Peer& p, const uint8_t* inner, size_t n);
  void SendStaged(Peer& p, const Now& now, Output& out);
  void SendKeepalive(Peer& p, const Now& now, Output& out);
  size_t SealWith(Keypair& kp, uint64_t counter, uint8_t* buf, size_t innerLen);
  void SentAuthenticated(Peer& p, const Now& now, bool data);
  void SendTo(Peer& p, const uint8_t* d, size_t n, Output& out);

  // Index table (device.cc)
  uint32_t NewIndex(const std::shared_ptr<Peer>& p);
  void DropIndex(uint32_t index);
  void BindIndex(uint32_t index, const KeypairRef& kp);
  bool LookupIndex(uint32_t index, IndexEntry* e) const;
  void DeleteKeypair(KeypairRef& kp);
  std::shared_ptr<Peer> Self(Peer& p) const;

  Timing timing_;
  SystemRandom systemRandom_;
  RandomSource* rng_;
  StaticIdentity identity_;
  bool hasKey_ = false;
  uint32_t mtu_ = 0;
  CookieChecker checker_;

  mutable std::shared_mutex peersMu_;
  std::map<Key, std::shared_ptr<Peer>> peers_;
  mutable std::shared_mutex indexMu_;
  std::unordered_map<uint32_t, IndexEntry> index_;
  std::mutex rngMu_;
  std::atomic<uint64_t> jitterState_{0};  // Jitter's generator (splitmix64), seeded from rng_ once
  std::atomic<int64_t> earliest_{INT64_MAX};
  std::atomic<bool> lowered_{false};
  std::atomic<uint64_t> counts_[static_cast<size_t>(Reason::kCount)] = {};
};

}  // namespace wg
}  // namespace flannelts
