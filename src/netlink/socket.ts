// Typed view of the native NetlinkSocket (native/netlink.cc). The interface is also what the
// transaction layer depends on, so unit tests can drive it with a scripted fake socket.
import { loadAddon } from '../native/addon.js';
import { NETLINK_ROUTE } from './constants.js';

export interface NetlinkTransport {
  /** Sends one datagram to the kernel. Throws an Error with `code` (errno name) on failure. */
  send(buf: Buffer): void;
  /** One datagram, or null when none arrived within timeoutMs. */
  recv(timeoutMs: number): Buffer | null;
  /** Our netlink port id (nl_pid), which the kernel echoes in replies. */
  readonly pid: number;
  close(): void;
}

type NetlinkSocketCtor = new (protocol?: number, groups?: number) => NetlinkTransport & { readonly closed: boolean };

export function openNetlinkSocket(protocol = NETLINK_ROUTE, groups = 0): NetlinkTransport {
  const ctor = loadAddon()['NetlinkSocket'] as NetlinkSocketCtor | undefined;
  if (typeof ctor !== 'function') throw new Error('flannelts: native addon has no NetlinkSocket export');
  return new ctor(protocol, groups);
}
