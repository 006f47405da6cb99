// Least privilege: once flanneld has opened its TUN/sockets, created devices and bound its listeners it
// keeps only the capabilities its steady state uses, so a bug in the daemon (or in what it parses from
// the store) cannot be turned into more than network administration of this node.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadAddon } from '../native/addon.js';

/** Linux capability numbers (include/uapi/linux/capability.h) for the ones flanneld reasons about. */
export const CAP = { NET_BIND_SERVICE: 10, NET_ADMIN: 12, NET_RAW: 13 } as const;

export interface KeepInputs {
  /** -ip-masq or -iptables-forward-rules: the daemon keeps running iptables-save/-restore. */
  firewall: boolean;
  /** `iptables-save --version` when the firewall is on: "(legacy)" needs a raw socket. */
  iptablesVersion?: string;
}

/**
 * What the running daemon still needs:
 *  - CAP_NET_ADMIN always: netlink route/neigh/fdb/link changes of the reconcile pass, vxlan device
 *    re-creation, and (inherited by the child) iptables-restore's nf_tables netlink writes;
 *  - CAP_NET_RAW only for iptables-legacy, whose iptables-restore opens a SOCK_RAW socket to talk to
 *    the kernel (nf_tables needs only CAP_NET_ADMIN: checked with setpriv on iptables 1.8.9);
 *  - never CAP_NET_BIND_SERVICE: the healthz port is bound before the drop and never re-bound.
 */
export function capsToKeep(inputs: KeepInputs): number[] {
  const keep: number[] = [CAP.NET_ADMIN];
  if (inputs.firewall && inputs.iptablesVersion !== undefined && /legacy/i.test(inputs.iptablesVersion)) keep.push(CAP.NET_RAW);
  return keep;
}

/** `iptables-save --version`, or undefined when it cannot run (then the firewall reports it itself). */
export function iptablesVersion(): string | undefined {
  try {
    return execFileSync('iptables-save', ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 });
  } catch {
    return undefined;
  }
}

export interface DropResult {
  kept: number[];
  /** Threads whose capabilities were changed (the calling one included). */
  threads: number;
  /** Threads that block signals and could not be reached (Node's idle SIGUSR1 inspector thread). */
  unreached: number[];
}

interface CapsAddon {
  dropCapabilities(keep: number[]): { threads: number; unreached: number[] };
}

function isCapsAddon(a: Record<string, unknown>): a is Record<string, unknown> & CapsAddon {
  return typeof a.dropCapabilities === 'function';
}

export function dropCapabilities(keep: number[]): DropResult {
  const addon = loadAddon();
  if (!isCapsAddon(addon)) throw new Error('native addon lacks dropCapabilities: rebuild it (npm run build)');
  // Node starts its inspector on SIGUSR1 from a thread that blocks every signal, so that thread cannot be
  // made to drop its capabilities. Owning SIGUSR1 here keeps it idle forever: the inspector never starts.
  process.on('SIGUSR1', () => {});
  const r = addon.dropCapabilities(keep);
  return { kept: [...keep], threads: r.threads, unreached: r.unreached };
}

/** Bit mask of a capability list as /proc/<pid>/status prints it (CapEff, CapBnd, ...). */
export function capMask(caps: readonly number[]): bigint {
  return caps.reduce((m, c) => m | (1n << BigInt(c)), 0n);
}

/** The Cap* lines of a /proc status file as numbers. */
export function readCaps(statusPath: string): Record<'CapInh' | 'CapPrm' | 'CapEff' | 'CapBnd' | 'CapAmb', bigint> {
  const text = readFileSync(statusPath, 'utf8');
  const get = (k: string): bigint => {
    const m = new RegExp(`^${k}:\\s*([0-9a-f]+)$`, 'm').exec(text);
    if (!m?.[1]) throw new Error(`${statusPath}: no ${k} line`);
    return BigInt('0x' + m[1]);
  };
  return { CapInh: get('CapInh'), CapPrm: get('CapPrm'), CapEff: get('CapEff'), CapBnd: get('CapBnd'), CapAmb: get('CapAmb') };
}
