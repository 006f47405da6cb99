// The engine settings flanneld's extension flags carry (-udp-offload, -udp-reply-poll-us, -udp-threads,
// -vxlan-userspace, -wireguard-userspace): one shape from the flags through the platform to the engine's options.

/** The engine's default and largest reply-polling windows (native/engine/options.h kDefaultReplyPollUs, kMaxReplyPollUs). */
export const DEFAULT_REPLY_POLL_US = 300;
export const MAX_REPLY_POLL_US = 10_000;

export interface DataPlaneSettings {
  /** -udp-offload: false forces every udp offload off, whatever net-conf's Backend.Offload says. */
  udpOffload: boolean;
  /** -udp-reply-poll-us: the engine's reply-polling window, 0 off (EngineOptions.replyPollUs). */
  replyPollUs: number;
  /** -udp-threads: the engine's data-plane threads, 0 automatic (EngineOptions.dataThreads). */
  dataThreads: 0 | 1 | 2;
  /** -vxlan-userspace: this node's vxlan backend runs the userspace VTEP. */
  vxlanUserspace: boolean;
  /** -wireguard-userspace: this node's wireguard backend runs userspace WireGuard, kernel WireGuard or not. */
  wireguardUserspace: boolean;
}
