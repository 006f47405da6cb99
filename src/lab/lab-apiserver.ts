// The fake Kubernetes API server of a `--store kube` lab: a child process inside the underlay namespace
// at 198.18.0.1:6443 (fake-apiserver-main.ts), one node object per lab node, driven over its stdin
// (outages, node edits) and stopped/resumed with its node objects kept, as an API server restart is.
import { closeSync, openSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { createInterface, type Interface } from 'node:readline';
import type { Namespace } from './netns.js';
import { LAB_SERVICE_IP } from './topology.js';
import { sleep } from '../util/sleep.js';

export const LAB_APISERVER_URL = `http://${LAB_SERVICE_IP}:6443`;

/** A node object of the lab's fake API server, as the server is started with it. */
export interface LabKubeNode {
  name: string;
  podCIDR?: string;
  podCIDRs?: string[];
  annotations?: Record<string, string>;
}

/** The parts of a node object the lab reads back from its API server. */
interface KubeNodeObject {
  metadata: { name: string; resourceVersion: string; annotations?: Record<string, string> };
  spec: { podCIDR?: string; podCIDRs?: string[] };
}

export class LabApiServer {
  private proc?: { child: ChildProcess; lines: Interface; queue: Promise<unknown> };
  /** Node objects of a stopped API server, for resume(). */
  private stopped?: { nodes: LabKubeNode[]; rv: number };

  constructor(
    private readonly underlay: Namespace,
    /** The lab's directory: the server's log lives in it. */
    private readonly dir: string,
  ) {}

  get pid(): number | undefined {
    return this.proc?.child.pid;
  }

  /** Starts the server with these node objects. */
  async start(nodes: LabKubeNode[], rv = 100): Promise<void> {
    const here = dirname(fileURLToPath(import.meta.url));
    const url = new URL(LAB_APISERVER_URL);
    const logPath = join(this.dir, 'apiserver.log');
    const logFd = openSync(logPath, 'a');
    let child: ChildProcess;
    try {
      child = this.underlay.spawn(process.execPath, [join(here, 'fake-apiserver-main.js'), '--host', url.hostname, '--port', url.port, '--nodes', JSON.stringify(nodes), '--rv', String(rv)], {
        stdio: ['pipe', 'pipe', logFd],
        detached: true,
      });
    } finally {
      closeSync(logFd);
    }
    const lines = createInterface({ input: child.stdout! });
    const ready = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`lab API server did not start at ${LAB_APISERVER_URL}; see ${logPath}`)), 15_000);
      lines.once('line', (l) => { clearTimeout(timer); resolve(l); });
      child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`lab API server exited (${code}); see ${logPath}`)); });
    });
    if (!(JSON.parse(ready) as { ready?: boolean }).ready) throw new Error(`lab API server: unexpected "${ready}"`);
    this.proc = { child, lines, queue: Promise.resolve() };
  }

  /**
   * Stops the server (an outage as the daemons see it: connections cut, then refused). Its node objects
   * (annotations included) are kept for resume().
   */
  async stop(): Promise<void> {
    const api = this.proc;
    if (!api) throw new Error('this lab has no running API server (store is not kube, or it is stopped)');
    const state = await this.command({ op: 'nodes' });
    const objects = state.nodes as KubeNodeObject[];
    const nodes = objects.map((x): LabKubeNode => ({ name: x.metadata.name, podCIDR: x.spec.podCIDR, podCIDRs: x.spec.podCIDRs, annotations: x.metadata.annotations }));
    // The server's own counter (deletes bump it too); older servers' answers lack it.
    const rv = Number(state.resourceVersion ?? Math.max(0, ...objects.map((x) => Number(x.metadata.resourceVersion))));
    this.stopped = { nodes, rv };
    api.child.kill('SIGTERM');
    await new Promise<void>((resolve) => (api.child.exitCode !== null || api.child.signalCode !== null ? resolve() : api.child.once('exit', () => resolve())));
    this.proc = undefined;
  }

  /**
   * Starts the server again with the node objects it had when stopped and higher resourceVersions (what
   * the daemons see of a kube-apiserver restart). `edit` changes that node set first: a node deleted or
   * added while the server was down, as another API server replica would have recorded it.
   */
  async resume(edit: (nodes: LabKubeNode[]) => LabKubeNode[] = (n) => n): Promise<void> {
    const saved = this.stopped;
    if (!saved) throw new Error('the lab\'s API server was not stopped with stopApiServer()');
    this.stopped = undefined;
    await this.start(edit(saved.nodes.map((n) => ({ ...n }))), saved.rv + 1000);
  }

  /** A restart: stop, `downMs` without it, start again with the same nodes. */
  async restart(downMs = 500): Promise<void> {
    await this.stop();
    await sleep(downMs);
    await this.resume();
  }

  /** One command over the server's stdin (see fake-apiserver-main.ts); its JSON answer. */
  command(cmd: Record<string, unknown>): Promise<Record<string, unknown>> {
    const api = this.proc;
    if (!api) return Promise.reject(new Error('this lab has no API server (store is not kube)'));
    const next = api.queue.then(
      () =>
        new Promise<Record<string, unknown>>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error('lab API server did not answer')), 5000);
          api.lines.once('line', (l) => { clearTimeout(timer); resolve(JSON.parse(l) as Record<string, unknown>); });
          api.child.stdin!.write(JSON.stringify(cmd) + '\n');
        }),
    );
    api.queue = next.catch(() => undefined);
    return next;
  }
}
