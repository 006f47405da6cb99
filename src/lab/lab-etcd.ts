// The etcd of a `--store etcd` lab: a single member inside the underlay namespace at 198.18.0.1:2379,
// with the lab's net-conf under flannel's prefix. The lab's addresses are not reachable from the
// namespace this process runs in, so every request goes through etcd's JSON gateway from inside.
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import type { Namespace } from './netns.js';
import { LAB_SERVICE_IP } from './topology.js';
import { killAndWait } from '../util/process.js';
import { sleep } from '../util/sleep.js';

export const LAB_ETCD_ENDPOINT = `http://${LAB_SERVICE_IP}:2379`;
export const LAB_ETCD_PREFIX = '/coreos.com/network';

export class LabEtcd {
  private pid?: number;

  constructor(
    private readonly underlay: Namespace,
    /** The lab's directory: etcd's data directory and log live in it. */
    private readonly dir: string,
    private readonly netConf: () => string,
    private readonly log: (line: string) => void,
  ) {}

  get running(): number | undefined {
    return this.pid;
  }

  /** Sends etcd a signal by PID: SIGSTOP freezes it (its sockets stay open, nothing answers), SIGCONT thaws it. */
  signal(sig: NodeJS.Signals): void {
    if (this.pid === undefined) throw new Error('lab etcd is not running');
    process.kill(this.pid, sig);
  }

  /** Stops etcd (an outage); its data directory is kept for start(). */
  async stop(): Promise<void> {
    const pid = this.pid;
    if (pid === undefined) return;
    this.pid = undefined;
    await killAndWait(pid, { graceMs: 5000 });
  }

  /** (Re)starts etcd on the same data directory and makes sure the config key is there. */
  async start(): Promise<void> {
    const dataDir = join(this.dir, 'etcd');
    const peer = `http://${LAB_SERVICE_IP}:2380`;
    const logFd = openSync(join(this.dir, 'etcd.log'), 'a');
    try {
      const etcd = this.underlay.spawn('etcd', [
        '--name', 'lab', '--data-dir', dataDir,
        '--listen-client-urls', LAB_ETCD_ENDPOINT, '--advertise-client-urls', LAB_ETCD_ENDPOINT,
        '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer, '--initial-cluster', `lab=${peer}`,
        '--log-level', 'warn',
      ], { stdio: ['ignore', logFd, logFd], detached: true });
      etcd.unref();
      this.pid = etcd.pid;
    } finally {
      closeSync(logFd);
    }
    const deadline = Date.now() + 20_000;
    for (;;) {
      try {
        await this.put(`${LAB_ETCD_PREFIX}/config`, this.netConf());
        break;
      } catch (e) {
        if (Date.now() > deadline) throw new Error(`lab etcd did not come up at ${LAB_ETCD_ENDPOINT}: ${(e as Error).message}`);
        await sleep(200);
      }
    }
    this.log(`etcd at ${LAB_ETCD_ENDPOINT} in ${this.underlay.name}, config at ${LAB_ETCD_PREFIX}/config`);
  }

  /** One POST to etcd's JSON gateway from inside the underlay namespace; the decoded answer. */
  request(path: string, body: Record<string, string | number>): Record<string, unknown> {
    const script = `fetch(${JSON.stringify(LAB_ETCD_ENDPOINT + path)},{method:'POST',body:process.argv[1]}).then(async r=>{if(!r.ok)throw new Error(r.status+' '+await r.text());process.stdout.write(await r.text())}).catch(e=>{console.error(e.message);process.exit(1)})`;
    const out = this.underlay.exec(process.execPath, ['-e', script, JSON.stringify(body)], { timeoutMs: 5000 });
    return JSON.parse(out) as Record<string, unknown>;
  }

  /**
   * Puts a key; with `ttlSeconds` the key is attached to a fresh etcd lease of that TTL, so etcd itself
   * deletes it when the TTL runs out (how a flannel lease whose node stopped renewing expires).
   */
  async put(key: string, value: string, ttlSeconds?: number): Promise<void> {
    const body: Record<string, string> = { key: Buffer.from(key).toString('base64'), value: Buffer.from(value).toString('base64') };
    if (ttlSeconds !== undefined) body.lease = String(this.request('/v3/lease/grant', { TTL: ttlSeconds }).ID);
    this.request('/v3/kv/put', body);
  }

  /** Keys and values under a prefix, decoded. */
  list(prefix: string): Array<{ key: string; value: string }> {
    const end = Buffer.from(prefix);
    end[end.length - 1]!++;
    const r = this.request('/v3/kv/range', { key: Buffer.from(prefix).toString('base64'), range_end: end.toString('base64') }) as { kvs?: Array<{ key: string; value: string }> };
    return (r.kvs ?? []).map((kv) => ({ key: Buffer.from(kv.key, 'base64').toString(), value: Buffer.from(kv.value, 'base64').toString() }));
  }

  async delete(key: string): Promise<void> {
    this.request('/v3/kv/deleterange', { key: Buffer.from(key).toString('base64') });
  }
}
