// The userspace WireGuard device's counters (native WireGuardInterface.counters()): which of them
// account for received datagrams, so a test, status or an operator can check that every datagram the
// device got ended somewhere.

import type { WgCounters } from '../../native/wireguard.js';

/**
 * The protocol's outcomes of a received datagram: delivered, handled (a keepalive, a handshake or
 * cookie message) or dropped by reason. Each datagram lands in exactly one.
 */
export const WG_RX_REASONS = [
  'data',
  'keepalive',
  'initiation',
  'response',
  'cookie_reply',
  'cookie_sent',
  'initiation_crossed',
  'too_short',
  'unknown_type',
  'bad_length',
  'bad_mac1',
  'unknown_receiver',
  'expired_keypair',
  'decrypt_failed',
  'replay',
  'static_decrypt',
  'unknown_peer',
  'timestamp_decrypt',
  'handshake_replay',
  'handshake_flood',
  'handshake_state',
  'response_decrypt',
  'dh_failed',
  'cookie_unexpected',
] as const satisfies ReadonlyArray<keyof WgCounters>;

/** Datagrams the device saw minus those with an outcome (0 once the handshake queue is drained). */
export function unaccountedDatagrams(c: Readonly<Record<string, number>>): number {
  const ended = WG_RX_REASONS.reduce((n, r) => n + (c[r] ?? 0), 0) + (c.handshake_queue_full ?? 0) + (c.handshake_abandoned ?? 0);
  return (c.rx_datagrams ?? 0) - ended;
}

/** The reasons that are not "fine" (every drop), non-zero only, for logs and reports. */
export function wgDropReasons(c: Readonly<Record<string, number>>): Record<string, number> {
  const fine = new Set(['data', 'keepalive', 'initiation', 'response', 'cookie_reply', 'cookie_sent', 'initiation_crossed']);
  const out: Record<string, number> = {};
  for (const r of WG_RX_REASONS) if (!fine.has(r) && (c[r] ?? 0) > 0) out[r] = c[r]!;
  if ((c.handshake_queue_full ?? 0) > 0) out.handshake_queue_full = c.handshake_queue_full!;
  return out;
}
