// The wireguard backend's /metrics: each peer's latest handshake and bytes (as `wg show` has them) and
// the userspace devices' protocol counters by reason. Collected at scrape time from the snapshot.
import { Counter, Gauge, type Registry } from 'prom-client';
import type { StatusSnapshot } from './status.js';

export function registerWireguardMetrics(registry: Registry, snap: () => StatusSnapshot): void {
  new Gauge({
    name: 'flannel_wireguard_peer_latest_handshake_timestamp_seconds',
    help: 'When the latest WireGuard handshake with the peer completed (Unix time); absent until the first one.',
    labelNames: ['device', 'public_key'],
    registers: [registry],
    collect() {
      this.reset();
      for (const p of snap().wireguard?.peers ?? []) {
        const at = Date.parse(p.latestHandshake);
        if (!Number.isNaN(at)) this.set({ device: p.device, public_key: p.publicKey }, at / 1000);
      }
    },
  });
  new Counter({
    name: 'flannel_wireguard_peer_bytes_total',
    help: 'Bytes of WireGuard datagrams exchanged with the peer, received (rx) and sent (tx), as wg show counts them.',
    labelNames: ['device', 'public_key', 'direction'],
    registers: [registry],
    collect() {
      this.reset();
      for (const p of snap().wireguard?.peers ?? []) {
        this.inc({ device: p.device, public_key: p.publicKey, direction: 'rx' }, p.rxBytes);
        this.inc({ device: p.device, public_key: p.publicKey, direction: 'tx' }, p.txBytes);
      }
    },
  });
  new Counter({
    name: 'flannel_wireguard_messages_total',
    help: 'Userspace WireGuard: what became of every received datagram and sent packet, by reason (data, keepalive, initiation, bad_mac1, replay, ...).',
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [reason, n] of Object.entries(snap().wireguard?.counters ?? {})) this.inc({ reason }, n);
    },
  });
}
