// A real etcd (Debian etcd-server) for integration tests: 127.0.0.1 only, random free ports, a temp data
// dir; stop/restart with the same data dir; always stopped by PID (also when a test fails).
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { sleep } from '../../src/util/sleep.js';
import { killAndWait } from '../../src/util/process.js';

export const ETCD_BINARY = '/usr/bin/etcd';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** etcd PIDs still running; killed if the test process exits without teardown (e.g. a crash). */
const running = new Set<number>();
process.on('exit', () => {
  for (const pid of running) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

export class TestEtcd {
  private child?: ChildProcess;
  private output = '';
  private constructor(
    readonly dataDir: string,
    readonly clientPort: number,
    readonly peerPort: number,
  ) {}

  get endpoint(): string {
    return `http://127.0.0.1:${this.clientPort}`;
  }

  /** Starts a fresh single-member etcd and waits until it is healthy. */
  static async start(): Promise<TestEtcd> {
    const dataDir = mkdtempSync(join(tmpdir(), 'flannelts-etcd-'));
    const etcd = new TestEtcd(dataDir, await freePort(), await freePort());
    try {
      await etcd.restart();
    } catch (e) {
      await etcd.destroy();
      throw e;
    }
    return etcd;
  }

  /** (Re)starts etcd on the same ports and data dir. */
  async restart(): Promise<void> {
    if (this.child) throw new Error('etcd is already running');
    const peer = `http://127.0.0.1:${this.peerPort}`;
    this.output = '';
    const child = spawn(
      ETCD_BINARY,
      [
        '--name', 'flannelts-test',
        '--data-dir', this.dataDir,
        '--listen-client-urls', this.endpoint,
        '--advertise-client-urls', this.endpoint,
        '--listen-peer-urls', peer,
        '--initial-advertise-peer-urls', peer,
        '--initial-cluster', `flannelts-test=${peer}`,
        '--log-level', 'warn',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ETCD_UNSUPPORTED_ARCH: process.arch === 'arm64' ? 'arm64' : '' } },
    );
    this.child = child;
    const pid = child.pid;
    if (pid) {
      running.add(pid);
      child.once('exit', () => running.delete(pid));
    }
    const keep = (b: Buffer): void => {
      this.output = (this.output + b.toString()).slice(-4000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    await this.waitHealthy(15_000);
  }

  private async waitHealthy(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!this.child || this.child.exitCode !== null) throw new Error(`etcd exited early: ${this.output}`);
      try {
        const res = await fetch(`${this.endpoint}/health`);
        const body = (await res.json()) as { health?: string };
        if (body.health === 'true') return;
      } catch {
        // not listening yet
      }
      await sleep(100);
    }
    throw new Error(`etcd not healthy after ${timeoutMs} ms: ${this.output}`);
  }

  /** Stops etcd by PID (SIGTERM, then SIGKILL after 5 s); the data dir is kept for restart(). */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    if (child.pid) await killAndWait(child.pid, { graceMs: 5000 });
    await exited;
  }

  /** Sends etcd a signal by PID: SIGSTOP freezes it (its sockets stay open), SIGCONT thaws it. */
  signal(sig: NodeJS.Signals): void {
    const pid = this.child?.pid;
    if (pid === undefined || this.child?.exitCode !== null) throw new Error('etcd is not running');
    process.kill(pid, sig);
  }

  /** Kills etcd with SIGKILL (a crash: no goodbye on its connections) and waits for the exit. */
  async crash(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    if (child.pid) await killAndWait(child.pid, { signal: 'SIGKILL', graceMs: 5000 });
    await exited;
  }

  /** etcd's Prometheus counter `name` summed over the samples whose labels include `labels`. */
  async counter(name: string, labels: Record<string, string> = {}): Promise<number> {
    const text = await (await fetch(`${this.endpoint}/metrics`)).text();
    let sum = 0;
    for (const line of text.split('\n')) {
      if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
      if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
      sum += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
    return sum;
  }

  /** Stops etcd and removes its data dir. */
  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  /** A plain etcd3 client, for assertions on raw keys and for acting as "another node". */
  client(): Etcd3 {
    return new Etcd3({ hosts: this.endpoint });
  }

  /** Compacts history up to the current revision. */
  async compact(): Promise<string> {
    const c = this.client();
    try {
      const res = await c.get('compaction-probe').exec();
      await c.kv.compact({ revision: res.header.revision, physical: true });
      return res.header.revision;
    } finally {
      c.close();
    }
  }
}
