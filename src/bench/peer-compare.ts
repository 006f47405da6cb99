// A daemon's view against the store: the peers `flannelctl status` lists, their public addresses and
// the data plane's routes, compared with the leases the store holds (the bench's steady-lease step and
// the chaos soak both end on this check).
import type { StatusSnapshot } from '../status.js';

export interface PeerComparison {
  ok: boolean;
  /** Subnets the store has and the daemon lacks, the other way round, and with another public IP. */
  missing: string[];
  extra: string[];
  wrongIP: string[];
  peers: number;
}

/** `want`: subnet (CIDR text) -> public IP of every lease the daemon should route to. */
export function comparePeers(s: StatusSnapshot, want: ReadonlyMap<string, string>): PeerComparison {
  const got = new Map(s.peers.map((p) => [p.subnet ?? '', p.publicIP ?? '']));
  const missing = [...want.keys()].filter((k) => !got.has(k));
  const extra = [...got.keys()].filter((k) => !want.has(k));
  const wrongIP = [...want].filter(([k, ip]) => got.has(k) && got.get(k) !== ip).map(([k]) => k);
  const routesOk = s.routes?.expected === want.size && s.routes.installed === want.size;
  return { ok: missing.length === 0 && extra.length === 0 && wrongIP.length === 0 && routesOk, missing, extra, wrongIP, peers: got.size };
}
