// Prerequisites for tests that need root, binaries or kernel features. Outside CI a missing
// prerequisite skips the test with the reason; with CI=true it fails, so CI cannot go green by skipping.
import { existsSync } from 'node:fs';
import { hasBinary } from '../../src/lab/netns.js';
import type { TestContext } from 'node:test';

export const inCI = process.env.CI === 'true';

export { hasBinary };

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

export interface Prereq {
  ok: boolean;
  reason: string;
}

export function rootAndNetns(): Prereq {
  if (!isRoot()) return { ok: false, reason: 'needs root (network namespaces, TUN devices)' };
  if (!hasBinary('ip')) return { ok: false, reason: 'needs iproute2 (ip)' };
  if (!existsSync('/dev/net/tun')) return { ok: false, reason: 'needs /dev/net/tun' };
  return { ok: true, reason: '' };
}

export function binary(name: string, pkg = name): Prereq {
  return hasBinary(name) ? { ok: true, reason: '' } : { ok: false, reason: `needs ${name} (apt-get install ${pkg})` };
}

/**
 * Returns true when the test may go on. Otherwise skips it (outside CI) or fails it (CI=true).
 * Usage: `if (!need(t, rootAndNetns(), binary('etcd', 'etcd-server'))) return;`
 */
export function need(t: TestContext, ...reqs: Prereq[]): boolean {
  const missing = reqs.filter((r) => !r.ok).map((r) => r.reason);
  if (missing.length === 0) return true;
  const msg = missing.join('; ');
  if (inCI) throw new Error(`prerequisite missing under CI=true: ${msg}`);
  t.skip(msg);
  return false;
}

/** Options for describe()/test() that skip a whole suite outside CI when prerequisites are missing. */
export function suiteNeeds(...reqs: Prereq[]): { skip?: string } {
  const missing = reqs.filter((r) => !r.ok).map((r) => r.reason);
  if (missing.length === 0 || inCI) return {};
  return { skip: missing.join('; ') };
}
