// One lease as a file of the embedded store: the name is the etcd key's last part (`198.19.90.0-24`),
// the content flannel's lease JSON plus "Expiration". Pure encode/decode, the scan diff, and the two
// atomic writes the store builds on (a temp name unique among writers, create-exclusive).
import { closeSync, openSync, writeSync } from 'node:fs';
import { decodeLeaseAttrs, encodeLeaseAttrs, LeaseFormatError, parseLeaseObject, parseSubnetKey } from '../lease.js';
import { goField } from '../../util/go-json.js';
import type { Lease, LeaseAttrs, LeaseEvent } from '../types.js';

/** A lease file's content: flannel's LeaseAttrs JSON with "Expiration" appended. */
export function encodeLeaseFile(attrs: LeaseAttrs, expiration: Date): string {
  return `${encodeLeaseAttrs(attrs).slice(0, -1)},"Expiration":${JSON.stringify(expiration.toISOString())}}\n`;
}

/** Parses a lease file; throws LeaseFormatError for anything malformed. */
export function decodeLeaseFile(name: string, text: string): Lease {
  const key = parseSubnetKey(name);
  if (!key) throw new LeaseFormatError(`lease file name ${JSON.stringify(name)} is not a subnet key like 198.19.90.0-24`);
  const attrs = decodeLeaseAttrs(text);
  // decodeLeaseAttrs validated the JSON object already; read the one extra field, Go-style as the rest.
  const exp = goField(parseLeaseObject(text), 'Expiration');
  const when = typeof exp === 'string' ? new Date(exp) : undefined;
  if (!when || Number.isNaN(when.getTime())) throw new LeaseFormatError(`lease file ${name}: Expiration ${JSON.stringify(exp)} is not a timestamp`);
  const lease: Lease = { attrs, expiration: when };
  if (key.subnet) lease.subnet = key.subnet;
  if (key.ipv6Subnet) lease.ipv6Subnet = key.ipv6Subnet;
  return lease;
}

export interface ScanEntry {
  lease: Lease;
  text: string;
}

/** Events turning `before` into `after`: new or changed files are "added" (as flannel reports updates). */
export function diffScans(before: ReadonlyMap<string, ScanEntry>, after: ReadonlyMap<string, ScanEntry>): LeaseEvent[] {
  const events: LeaseEvent[] = [];
  for (const [name, entry] of before) {
    if (!after.has(name)) events.push({ type: 'removed', lease: entry.lease });
  }
  for (const [name, entry] of after) {
    if (before.get(name)?.text !== entry.text) events.push({ type: 'added', lease: entry.lease });
  }
  return events;
}

let tempSeq = 0;
/**
 * PID, a per-process sequence number and 32 random bits: unique among writers of one store (names need
 * no unpredictability, so no node:crypto, whose modules cost RSS in a daemon that has no other use for them).
 */
export function uniqueSuffix(): string {
  tempSeq = (tempSeq + 1) % 0x100000000;
  return `${process.pid}.${tempSeq.toString(16)}${Math.floor(Math.random() * 0x100000000).toString(16).padStart(8, '0')}`;
}

/** Writes a new file at an exact path (no rename), failing if it exists. */
export function writeFileAtomicAt(path: string, text: string): void {
  const fd = openSync(path, 'wx', 0o644);
  try {
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
}
