// Link-change notifications (RTMGRP_LINK): a separate netlink socket whose native reader thread
// delivers each multicast datagram to the main thread. Used to notice e.g. flannel.1 being deleted
// or the external interface going down without polling.
import { loadAddon } from '../native/addon.js';
import { decodeMessages } from './codec.js';
import { NETLINK_ROUTE, RTM_DELLINK, RTM_NEWLINK, RTMGRP_LINK } from './constants.js';
import { decodeLink } from './link-msg.js';
import type { Link } from './types.js';

export type LinkEvent =
  | { kind: 'new' | 'del'; link: Link }
  /** Notifications were lost (kernel ENOBUFS) or undecodable: re-list links to resynchronise. */
  | { kind: 'resync'; reason: string };

export interface LinkWatch {
  close(): void;
}

interface SubscribableSocket {
  subscribe(cb: (err: (Error & { code?: string }) | null, buf: Buffer | null) => void): void;
  close(): void;
}
type Ctor = new (protocol: number, groups: number) => SubscribableSocket;

export function watchLinks(onEvent: (e: LinkEvent) => void): LinkWatch {
  const ctor = loadAddon()['NetlinkSocket'] as Ctor | undefined;
  if (typeof ctor !== 'function') throw new Error('flannelts: native addon has no NetlinkSocket export');
  const sock = new ctor(NETLINK_ROUTE, RTMGRP_LINK);
  let open = true;
  sock.subscribe((err, buf) => {
    // Datagrams already queued when close() ran are still delivered; drop them.
    if (!open) return;
    if (err) return onEvent({ kind: 'resync', reason: err.code ?? err.message });
    if (!buf) return;
    const msgs = decodeMessages(buf);
    if (!msgs.ok) return onEvent({ kind: 'resync', reason: msgs.error });
    for (const m of msgs.value) {
      if (m.type !== RTM_NEWLINK && m.type !== RTM_DELLINK) continue;
      const link = decodeLink(m.payload);
      if (!link.ok) onEvent({ kind: 'resync', reason: link.error });
      else onEvent({ kind: m.type === RTM_NEWLINK ? 'new' : 'del', link: link.value });
    }
  });
  return {
    close: () => {
      if (!open) return;
      open = false;
      sock.close();
    },
  };
}
