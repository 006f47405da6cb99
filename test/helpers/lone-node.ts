// One flanneld on one node namespace (an eth0 with an underlay address, the embedded file store), for tests
// of how the daemon starts or refuses to: exit codes, the first log lines, what it created. Every
// namespace and process belongs to the caller's NetnsSet, removed by its destroy().
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Namespace, NetnsSet } from '../../src/lab/netns.js';
import { ourFlanneld } from '../../src/lab/daemons.js';
import { isAlive, killAndWait } from '../../src/util/process.js';
import { sleep } from '../../src/util/sleep.js';

export interface LoneNode {
  ns: Namespace;
  dir: string;
  storeDir: string;
  subnetFile: string;
  /** Lease files in the store (a refused start leaves none). */
  leases(): string[];
  /** Interfaces of the namespace (`ip -o link` names). */
  links(): string[];
  cleanup(): void;
}

export function loneNode(set: NetnsSet, short: string, netConf: string): LoneNode {
  const ns = set.add(short);
  // A veth whose peer stays in the namespace (the kernel may lack the dummy driver).
  ns.ip('link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0peer');
  ns.ip('link', 'set', 'eth0peer', 'up');
  ns.ip('addr', 'add', '198.18.0.11/24', 'dev', 'eth0');
  ns.ip('addr', 'add', '2001:db8::b/64', 'dev', 'eth0', 'nodad');
  ns.ip('link', 'set', 'eth0', 'up');
  ns.ip('route', 'add', 'default', 'dev', 'eth0');
  ns.ip('-6', 'route', 'add', 'default', 'dev', 'eth0');
  const dir = mkdtempSync(join(tmpdir(), `flannelts-lone-${set.prefix}-`));
  const storeDir = join(dir, 'store');
  mkdirSync(storeDir);
  writeFileSync(join(storeDir, 'config'), netConf);
  return {
    ns,
    dir,
    storeDir,
    subnetFile: join(dir, 'subnet.env'),
    leases: () => readdirSync(storeDir).filter((f) => /^\d+\.\d+\.\d+\.\d+-\d+/.test(f)),
    links: () => ns.ip('-o', 'link', 'show').split('\n').map((l) => /^\d+: ([^:@]+)/.exec(l)?.[1] ?? '').filter(Boolean),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export interface RunResult {
  /** Exit code when the daemon exited by itself, undefined when it was still running (then stopped). */
  code?: number;
  /** Whether subnet.env had been written. */
  started: boolean;
  log: string;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  /** Run it where /proc/sys/net/bridge is an empty tmpfs (a host without br_netfilter). */
  hideBrNetfilter?: boolean;
  timeoutMs?: number;
}

/** Starts our flanneld on the node; returns when it exits or writes subnet.env (then SIGTERMs it). */
export async function runFlanneld(node: LoneNode, args: string[], o: RunOptions = {}): Promise<RunResult> {
  const [node0, ...rest] = ourFlanneld();
  const argv = [...rest, '-iface=eth0', `-subnet-store-dir=${node.storeDir}`, `-subnet-file=${node.subnetFile}`, `-status-socket=${join(node.dir, 'sock')}`, ...args];
  const [file, fileArgs] = o.hideBrNetfilter ? ['sh', ['-c', 'mount -t tmpfs flannelts-no-br-netfilter /proc/sys/net/bridge && exec "$0" "$@"', node0!, ...argv]] : [node0!, argv];
  const child = node.ns.spawn(file, fileArgs, { env: { ...process.env, ...(o.env ?? {}) }, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout?.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  let code: number | undefined;
  child.once('exit', (c) => (code = c ?? -1));
  const deadline = Date.now() + (o.timeoutMs ?? 20_000);
  while (code === undefined && !existsSync(node.subnetFile) && Date.now() < deadline) await sleep(50);
  const started = existsSync(node.subnetFile);
  if (code === undefined && child.pid !== undefined && isAlive(child.pid)) {
    await killAndWait(child.pid, { signal: 'SIGTERM', graceMs: 5000 });
    return { started, log };
  }
  while (code === undefined) await sleep(10);
  return { code, started, log };
}

