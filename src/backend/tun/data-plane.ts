// The contract between the TUN backends (udp, the userspace VXLAN VTEP) and the native engine: the
// peer table rows TypeScript pushes down, the engine's options and handle, the link operations on its
// TUN device, and the Backend.Offload option both backends share.
import type { IPAddr, IPNet } from '../../ip/index.js';
import type { EngineOptions, EngineStats, OffloadFlags, PeerRoute as EnginePeerRoute } from '../../native/engine.js';
import type { CaptureSource } from '../../capture/session.js';
import { goFields, isRecord } from '../../util/go-json.js';

/** One row of the engine's table: inner destination subnet -> peer's outer address, port (and VTEP MAC). */
export type PeerRoute = EnginePeerRoute;

/** What a TUN backend needs from the native engine (an in-memory double in unit tests). */
export interface TunDataPlane {
  readonly tunName: string;
  readonly tunIndex: number;
  setPeers(peers: PeerRoute[]): void;
  start(): void;
  /** Engine counters (totals, per peer, drops by reason), read on demand. */
  stats(): EngineStats;
  close(): void;
  /** One line saying which offloads are on and why others are off, for the startup log. */
  offloadReport?(): string;
  /** The engine's capture tap. */
  readonly capture?: CaptureSource;
}

/**
 * What a backend asks of the engine: the engine's own options, those the backend decides made
 * mandatory; the engine-wide tuning (reply polling, threads) comes from flanneld's flags instead.
 */
export type DataPlaneOptions = Required<Pick<EngineOptions, 'tunName' | 'port' | 'allowUnknownSource' | 'offload'>> &
  Pick<EngineOptions, 'bindV4' | 'bindV6'> & {
    /** The userspace VXLAN VTEP (vxlan backend without kernel VXLAN): VXLAN frames instead of flannel-udp. */
    vxlan?: Required<Pick<EngineOptions, 'vni' | 'mac' | 'sendSockets' | 'innerMtu'>> & Pick<EngineOptions, 'vtep4'>;
  };

/** What a TUN backend needs from netlink for its device (an in-memory double in unit tests). */
export interface LinkOps {
  setMtu(index: number, mtu: number): void;
  setUp(index: number): void;
  /** Adds addr/prefixLen on the link; an identical existing address is not an error. */
  ensureAddr(index: number, addr: IPAddr, prefixLen: number): boolean;
  /** Adds a route for dst via the link; returns true when it had to be added (false: already there). */
  ensureRoute(index: number, dst: IPNet): boolean;
}

/** net-conf key -> engine offload name, for Backend.Offload objects. */
const OFFLOAD_KEYS: Record<string, keyof OffloadFlags> = { VnetHdr: 'vnetHdr', TSO: 'tso', USO: 'uso', UDPGSO: 'udpGso', UDPGRO: 'udpGro' };

/**
 * Backend.Offload: absent/true (all offloads, each probed), false (none), or per feature, e.g.
 * {"TSO": false, "UDPGRO": false}. Our extension; stock flanneld ignores unknown Backend keys.
 */
export function parseOffload(raw: unknown): boolean | Partial<OffloadFlags> {
  if (raw === undefined || raw === true) return true;
  if (raw === false) return false;
  const bad = (): never => {
    throw new Error(`net-conf: Backend.Offload ${JSON.stringify(raw)} is invalid: must be true, false or an object of ${Object.keys(OFFLOAD_KEYS).join('/')} booleans`);
  };
  if (!isRecord(raw)) return bad();
  // Go JSON keys, as for flannel's own options (util/go-json.ts); a key naming no feature is an error.
  const names = Object.keys(OFFLOAD_KEYS);
  if (Object.keys(raw).some((k) => goFields({ [k]: true }, names).size === 0)) return bad();
  const out: Partial<OffloadFlags> = {};
  for (const [k, v] of goFields(raw, names)) {
    if (typeof v !== 'boolean') return bad();
    out[OFFLOAD_KEYS[k]!] = v;
  }
  return out;
}

/** Brings a TUN-based network up; if that fails the data plane is closed, so no TUN or socket stays behind. */
export function bringUpOrClose<N extends { bringUp(): void }>(plane: TunDataPlane, net: N): N {
  try {
    net.bringUp();
  } catch (e) {
    plane.close();
    throw e;
  }
  return net;
}

/** How a TUN backend gets its engine and link operations (the real addon + netlink, or doubles). */
export interface TunPlatform {
  openDataPlane(o: DataPlaneOptions): TunDataPlane;
  links(): LinkOps;
}
