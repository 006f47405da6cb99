// Prerequisites for tests that need root, binaries or kernel features. Outside CI a missing
// prerequisite skips the test with the reason; with CI=true it fails, so CI cannot go green by skipping.
// A missing program's reason names its Debian package from system-packages.tsv, in the form
// "needs etcd (apt-get install etcd-server)" that the skip-summary reporter counts by package.
import { existsSync } from 'node:fs';
import { hasBinary } from '../../src/util/system-packages.js';
import { installHint } from '../../src/util/system-packages.js';
import type { TestContext } from 'node:test';

export const inCI = process.env.CI === 'true';

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

export interface Prereq {
  ok: boolean;
  reason: string;
}

export function rootAndNetns(): Prereq {
  if (!isRoot()) return { ok: false, reason: 'needs root (network namespaces, TUN devices)' };
  if (!hasBinary('ip')) return { ok: false, reason: installHint('ip') };
  if (!existsSync('/dev/net/tun')) return { ok: false, reason: 'needs /dev/net/tun' };
  return { ok: true, reason: '' };
}

/** A program on PATH; throws when system-packages.tsv does not name its package, so that list stays whole. */
export function binary(name: string): Prereq {
  const reason = installHint(name);
  return hasBinary(name) ? { ok: true, reason: '' } : { ok: false, reason };
}

/**
 * Returns true when the test may go on. Otherwise skips it (outside CI) or fails it (CI=true).
 * Usage: `if (!need(t, rootAndNetns(), binary('etcd'))) return;`
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
