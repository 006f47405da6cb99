// flannel-udp: nothing around the inner packet, so nothing to write or strip; see flannel_udp.h.
#include "encap/flannel_udp.h"

namespace flannelts {

namespace {

class FlannelUdp final : public Encapsulation {
 public:
  FlannelUdp() : Encapsulation(Traits()) {}

  Sealed Seal(const RouteEntry&, const uint8_t*, const PacketInfo&, WireRun&, EncapHost&) override { return {}; }
  Opened Open(uint8_t*, size_t, const IpAddr&, uint16_t, EncapHost&) override { return {}; }

 private:
  static EncapTraits Traits() {
    EncapTraits t;
    t.decrementTtl = true;
    t.checkOuterSource = true;
    return t;
  }
};

}  // namespace

std::unique_ptr<Encapsulation> MakeFlannelUdp() { return std::make_unique<FlannelUdp>(); }

}  // namespace flannelts
