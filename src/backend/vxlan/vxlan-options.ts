// The vxlan backend's configuration and lease data, as flannel reads and writes them: Backend options
// of net-conf.json (Go JSON: case-insensitive keys), device names, and the BackendData
// {"VNI":1,"VtepMAC":"..."} our lease carries and every peer's lease is decoded from.
import type { Family } from '../../ip/index.js';
import type { OffloadFlags } from '../../native/engine.js';
import { optionBool, optionField, optionInt, optionString } from '../backend-options.js';
import { parseOffload } from '../tun/data-plane.js';
import { goFields } from '../../util/go-json.js';

/** The Linux kernel's IANA-unassigned default VXLAN port, which flannel keeps (Port 0). */
export const VXLAN_DEFAULT_PORT = 8472;
/** Outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14), as flannel subtracts. */
export const VXLAN_ENCAP_OVERHEAD = 50;
const MAX_VNI = 0xffffff;

export interface VxlanOptions {
  vni: number;
  /** 0: the kernel default port (8472). */
  port: number;
  gbp: boolean;
  learning: boolean;
  directRouting: boolean;
  /** MTU of the outgoing (encapsulated) packets; absent: the external interface's MTU. */
  mtu?: number;
  /** Accepted for net-conf compatibility; flannel uses it on Windows only. */
  macPrefix?: string;
  /** flannelts: the userspace VXLAN VTEP instead of a kernel device (stock flanneld ignores the key). */
  userspace: boolean;
  /** flannelts: the userspace VTEP's offloads, as udp's Backend.Offload (true: all, each probed). */
  offload: boolean | Partial<OffloadFlags>;
}

/** Backend options of net-conf.json, read like flannel's VXLANConfig (Go JSON: case-insensitive keys). */
export function parseVxlanOptions(raw: Readonly<Record<string, unknown>>): VxlanOptions {
  const vni = optionInt(raw, 'VNI', 1, 0, MAX_VNI);
  const port = optionInt(raw, 'Port', 0, 0, 65535, ' (0 means the kernel default 8472)');
  const mtuRaw = optionInt(raw, 'MTU', 0, 0, 65535);
  if (mtuRaw !== 0 && mtuRaw < 68 + VXLAN_ENCAP_OVERHEAD) {
    throw new Error(`net-conf: Backend.MTU ${mtuRaw} is invalid: must leave at least 68 bytes after the ${VXLAN_ENCAP_OVERHEAD}-byte VXLAN overhead`);
  }
  const macPrefix = optionString(raw, 'MacPrefix');
  if (macPrefix !== undefined && !/^[0-9a-fA-F]{2}-[0-9a-fA-F]{2}$/.test(macPrefix)) {
    throw new Error(`net-conf: Backend.MacPrefix ${JSON.stringify(macPrefix)} is invalid: prefix must be of the format xx-xx e.g. 0E-2A`);
  }
  return {
    vni,
    port,
    gbp: optionBool(raw, 'GBP', false),
    learning: optionBool(raw, 'Learning', false),
    directRouting: optionBool(raw, 'DirectRouting', false),
    mtu: mtuRaw === 0 ? undefined : mtuRaw,
    macPrefix,
    userspace: optionBool(raw, 'Userspace', false),
    offload: parseOffload(optionField(raw, 'Offload')),
  };
}

export const vxlanDeviceName = (vni: number, family: Family): string => (family === 4 ? `flannel.${vni}` : `flannel-v6.${vni}`);

export interface VxlanBackendData {
  VNI: number;
  VtepMAC: string;
}

/** The lease's BackendData; key order VNI, VtepMAC is what Go's json.Marshal writes. */
export function vxlanBackendData(vni: number, mac: string): VxlanBackendData {
  return { VNI: vni, VtepMAC: mac };
}

/** Go's net.ParseMAC for the 6-byte forms flannel peers write; lowercase colon form out. */
export function normalizeMac(s: string): string | undefined {
  const m = /^([0-9a-fA-F]{2})([:-])([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})$/.exec(s);
  if (m) return [m[1], m[3], m[4], m[5], m[6], m[7]].join(':').toLowerCase();
  const d = /^([0-9a-fA-F]{4})\.([0-9a-fA-F]{4})\.([0-9a-fA-F]{4})$/.exec(s);
  if (d) return (d[1]! + d[2]! + d[3]!).toLowerCase().replace(/(..)(?!$)/g, '$1:');
  return undefined;
}

export type DecodedBackendData = { ok: true; vni?: number; mac: string } | { ok: false; error: string };

/** A peer's BackendData (already JSON-parsed); every malformed shape is an error value, never a throw. */
export function decodeVxlanBackendData(data: unknown): DecodedBackendData {
  if (data === undefined || data === null) return { ok: false, error: 'no BackendData' };
  if (typeof data !== 'object' || Array.isArray(data)) return { ok: false, error: `BackendData is not a JSON object: ${JSON.stringify(data)?.slice(0, 60)}` };
  // vxlanLeaseAttrs{VNI, VtepMAC} as Go decodes it (util/go-json.ts).
  const fields = goFields(data as Record<string, unknown>, ['VNI', 'VtepMAC']);
  const vni = fields.get('VNI');
  if (vni !== undefined && vni !== null && (typeof vni !== 'number' || !Number.isInteger(vni) || vni < 0 || vni > 0xffffffff)) {
    return { ok: false, error: `BackendData.VNI ${JSON.stringify(vni)} is not a uint32` };
  }
  const macRaw = fields.get('VtepMAC');
  if (typeof macRaw !== 'string') return { ok: false, error: `BackendData.VtepMAC ${JSON.stringify(macRaw)} is not a MAC address string` };
  const mac = normalizeMac(macRaw);
  if (!mac) return { ok: false, error: `BackendData.VtepMAC ${JSON.stringify(macRaw)} is not a MAC address` };
  return { ok: true, vni: typeof vni === 'number' ? vni : undefined, mac };
}
