// Byte conversions for the codec: IPAddr/IPNet (bigint) <-> network-order bytes, MAC strings <-> bytes.
// Kept local to src/netlink/ on purpose: the full IP library lives in src/ip/ and is developed in
// parallel; these few helpers are all the codec needs and must not depend on its shape beyond types.ts.
import type { Family, IPAddr, IPNet } from '../ip/types.js';
import { AF_INET, AF_INET6 } from './constants.js';

export function addrLen(family: Family): number {
  return family === 4 ? 4 : 16;
}

export function familyToAf(family: Family): number {
  return family === 4 ? AF_INET : AF_INET6;
}

export function afToFamily(af: number): Family | undefined {
  if (af === AF_INET) return 4;
  if (af === AF_INET6) return 6;
  return undefined;
}

/** Network-order bytes of an address. */
export function ipToBytes(ip: IPAddr | IPNet): Buffer {
  const n = addrLen(ip.family);
  const out = Buffer.alloc(n);
  let v = ip.value;
  for (let i = n - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

/** Address from 4 or 16 network-order bytes; undefined for any other length. */
export function bytesToIp(b: Uint8Array): IPAddr | undefined {
  const family: Family | undefined = b.length === 4 ? 4 : b.length === 16 ? 6 : undefined;
  if (family === undefined) return undefined;
  let v = 0n;
  for (const byte of b) v = (v << 8n) | BigInt(byte);
  return { family, value: v };
}

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

/** "aa:bb:cc:dd:ee:ff" -> 6 bytes; throws on a malformed string (a caller bug, not kernel data). */
export function macToBytes(mac: string): Buffer {
  if (!MAC_RE.test(mac)) throw new TypeError(`invalid MAC address ${JSON.stringify(mac)}`);
  return Buffer.from(mac.replace(/:/g, ''), 'hex');
}

/** Link-layer address bytes -> lowercase colon-separated hex (any length, e.g. 6 for Ethernet). */
export function bytesToMac(b: Uint8Array): string {
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}
