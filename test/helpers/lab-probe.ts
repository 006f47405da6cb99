// Reading a lab node's kernel state for the kernel-backend netns tests (tests may use ip/bridge/iptables),
// and pod-to-pod TCP transfers with a content check.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Lab, LabNode } from '../../src/lab/lab.js';
import { sleep } from '../../src/util/sleep.js';


/** Polls `check` until it returns true or `timeoutMs` passes; returns whether it became true. */
export async function eventually(check: () => boolean, timeoutMs: number, stepMs = 250): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (check()) return true;
    } catch {
      // Not there yet (e.g. a device being recreated).
    }
    if (Date.now() > deadline) return false;
    await sleep(stepMs);
  }
}

const lines = (s: string): string[] => s.split('\n').map((l) => l.trim()).filter(Boolean);

/** "198.19.5.1/24" -> "198.19.5.0"; "2001:db8:100:5::1/64" -> "2001:db8:100:5::". */
export function subnetAddr(firstUsable: string): string {
  const [addr] = firstUsable.split('/');
  return addr!.includes(':') ? addr!.replace(/1$/, '') : addr!.replace(/\.1$/, '.0');
}

export function macOf(node: LabNode, dev: string): string {
  const j = JSON.parse(node.ns.ip('-j', 'link', 'show', dev)) as Array<{ address: string }>;
  return j[0]!.address;
}

export const routesOn = (node: LabNode, dev: string, family: 4 | 6 = 4): string[] =>
  lines(node.ns.ip(`-${family}`, 'route', 'show', 'dev', dev)).map((l) => l.replace(/ metric \d+| pref medium| proto \w+/g, ''));

export const neighsOn = (node: LabNode, dev: string, family: 4 | 6 = 4): string[] => lines(node.ns.ip(`-${family}`, 'neigh', 'show', 'dev', dev));

export const fdbOn = (node: LabNode, dev: string): string[] => lines(node.ns.exec('bridge', ['fdb', 'show', 'dev', dev]));

/** flannel's iptables lines (our chains and the jumps to them) as iptables-save prints them. */
export function flannelRules(node: LabNode, family: 4 | 6, table: string): string[] {
  const out = node.ns.exec(family === 4 ? 'iptables-save' : 'ip6tables-save', ['-t', table]);
  return lines(out).filter((l) => /FLANNEL|flanneld/.test(l));
}

/** Deletes a node's lease from the lab's file store (what an expired or deleted lease looks like). */
export function deleteLease(lab: Lab, node: LabNode): string[] {
  const key = subnetAddr(node.subnetEnv.FLANNEL_SUBNET!) + '-24';
  const files = readdirSync(lab.storeDir).filter((f) => f.startsWith(key));
  for (const f of files) rmSync(join(lab.storeDir, f));
  return files;
}

export function leaseText(lab: Lab, node: LabNode): string {
  const key = subnetAddr(node.subnetEnv.FLANNEL_SUBNET!) + '-24';
  const f = readdirSync(lab.storeDir).find((x) => x.startsWith(key));
  return f ? readFileSync(join(lab.storeDir, f), 'utf8') : '';
}

/** Pings every pod pair (both families when the lab has IPv6) and asserts all answered and how many pairs there were. */
export async function assertAllPairs(lab: Lab, expected?: number, count?: number): Promise<void> {
  const results = await lab.checkAllPairs(count);
  assert.deepEqual(results.filter((r) => !r.ok), []);
  if (expected !== undefined) assert.equal(results.length, expected);
}

const tcpCheck = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'tcp-check.js');

/**
 * For each [from, to]: a TCP server in `to`'s pod, then `bytes` sent from `from`'s pod to each of
 * `to`'s pod addresses (IPv4, and IPv6 when present), the server's sha256 checked by the client.
 */
export async function assertTcpTransfers(pairs: ReadonlyArray<readonly [LabNode, LabNode]>, bytes = 8 << 20): Promise<void> {
  for (const [from, to] of pairs) {
    const server = to.pod.spawn(process.execPath, [tcpCheck, 'serve', '5201']);
    try {
      await new Promise<void>((resolve, reject) => {
        server.stdout?.once('data', () => resolve());
        server.once('exit', () => reject(new Error('tcp server exited')));
      });
      for (const target of [to.podIP, ...(to.podIPv6 ? [to.podIPv6] : [])]) {
        const out = from.pod.exec(process.execPath, [tcpCheck, 'send', target, '5201', String(bytes)], { timeoutMs: 60_000 });
        const r = JSON.parse(out) as { ok: boolean; bytes: number };
        assert.ok(r.ok, `${from.name} -> ${to.name} ${target}: ${out}`);
      }
    } finally {
      server.kill('SIGTERM');
    }
  }
}
