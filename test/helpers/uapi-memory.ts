// A UAPI backend that keeps its state in memory and applies set requests as wireguard-go does
// (peers by public key, replace_peers, update_only, remove, replace_allowed_ips, allowed_ip -prefix),
// for the UAPI codec and server tests.
import { formatCIDR } from '../../src/ip/index.js';
import { UapiError, EINVAL, type UapiDeviceState, type UapiSet } from '../../src/backend/wireguard/uapi-codec.js';
import type { UapiBackend } from '../../src/backend/wireguard/uapi-server.js';

export class MemoryUapiDevice implements UapiBackend {
  state: UapiDeviceState = { listenPort: 0, fwmark: 0, peers: [] };
  sets: UapiSet[] = [];
  /** A listen port that is "in use": setting it fails with EADDRINUSE, as a bind would. */
  busyPort?: number;

  get(): UapiDeviceState {
    return this.state;
  }

  set(req: UapiSet): void {
    this.sets.push(req);
    if (req.listenPort !== undefined && req.listenPort === this.busyPort) throw new UapiError(-98, `failed to set listen_port: address in use`);
    if (req.privateKey) this.state.privateKey = req.privateKey;
    if (req.listenPort !== undefined) this.state.listenPort = req.listenPort;
    if (req.fwmark !== undefined) this.state.fwmark = req.fwmark;
    if (req.replacePeers) this.state.peers = [];
    for (const p of req.peers) {
      const i = this.state.peers.findIndex((x) => x.publicKey.equals(p.publicKey));
      if (p.remove) {
        if (i >= 0) this.state.peers.splice(i, 1);
        continue;
      }
      if (i < 0 && p.updateOnly) continue;
      if (i < 0 && this.state.privateKey && p.publicKey.equals(Buffer.alloc(32))) throw new UapiError(EINVAL, 'bad key');
      const peer = i >= 0 ? this.state.peers[i]! : { publicKey: p.publicKey, lastHandshakeSec: 0, lastHandshakeNsec: 0, txBytes: 0n, rxBytes: 0n, persistentKeepalive: 0, allowedIPs: [] };
      if (i < 0) this.state.peers.push(peer);
      if (p.presharedKey) peer.presharedKey = p.presharedKey;
      if (p.endpoint) peer.endpoint = p.endpoint;
      if (p.persistentKeepalive !== undefined) peer.persistentKeepalive = p.persistentKeepalive;
      if (p.replaceAllowedIPs) peer.allowedIPs = [];
      for (const a of p.allowedIPs) {
        const at = peer.allowedIPs.findIndex((x) => formatCIDR(x) === formatCIDR(a.net));
        if (a.remove) {
          if (at >= 0) peer.allowedIPs.splice(at, 1);
        } else if (at < 0) peer.allowedIPs.push(a.net);
      }
    }
  }
}
