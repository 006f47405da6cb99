// Network-namespace orchestration shared by `flannelctl lab`, the bench and the netns tests.
// Everything a run creates carries the run's prefix and is removed by destroy(), also on failure:
// namespaces are deleted and only the processes this run spawned are killed, by PID.
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { sleep } from '../util/sleep.js';
import { formatCpuList } from './cpuset.js';

export class CommandError extends Error {
  constructor(
    readonly cmd: string,
    readonly status: number | null,
    readonly stderr: string,
  ) {
    super(`${cmd}: exit ${status}: ${stderr.trim()}`);
  }
}

/** Runs a command synchronously; throws CommandError with its stderr on failure. */
export function run(cmd: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): string {
  try {
    return execFileSync(cmd, args, {
      encoding: 'utf8',
      input: opts.input,
      timeout: opts.timeoutMs ?? 30_000,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
  } catch (e) {
    const err = e as { status?: number | null; stderr?: string | Buffer };
    throw new CommandError([cmd, ...args].join(' '), err.status ?? null, String(err.stderr ?? (e as Error).message));
  }
}

/** A short random id for names; interface names are limited to 15 bytes, so keep it small. */
export function newRunId(): string {
  return randomBytes(3).toString('hex');
}

export interface Namespace {
  /** Full netns name (with the run prefix). */
  readonly name: string;
  /** CPUs every process started in it is pinned to (a node of a per-node placement); absent: not pinned. */
  readonly cpus?: readonly number[];
  /** Runs `cmd args` inside the namespace and returns stdout. */
  exec(cmd: string, args: string[], opts?: { input?: string; timeoutMs?: number }): string;
  /** `ip <args>` inside the namespace. */
  ip(...args: string[]): string;
  /** Starts a long-running process inside the namespace; it is killed by destroy(). */
  spawn(cmd: string, args: string[], opts?: SpawnOptions): ChildProcess;
}

export class NetnsSet {
  readonly prefix: string;
  private readonly namespaces: string[] = [];
  private readonly children = new Set<ChildProcess>();
  private destroyed = false;

  constructor(prefix = `ft${newRunId()}`) {
    this.prefix = prefix;
  }

  /** Creates `<prefix>-<short>` with loopback up; with `cpus`, everything started in it is pinned there. */
  add(short: string, cpus?: readonly number[]): Namespace {
    const name = `${this.prefix}-${short}`;
    run('ip', ['netns', 'add', name]);
    this.namespaces.push(name);
    run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
    return this.handle(name, cpus);
  }

  handle(name: string, cpus?: readonly number[]): Namespace {
    // `taskset -c L ip netns exec NS cmd`: taskset and ip both exec, so the process (and every thread
    // it creates later) has the mask from its first instruction and its PID is the command's.
    const enter = (cmd: string, args: string[]): [string, string[]] =>
      cpus?.length ? ['taskset', ['-c', formatCpuList(cpus), 'ip', 'netns', 'exec', name, cmd, ...args]] : ['ip', ['netns', 'exec', name, cmd, ...args]];
    return {
      name,
      ...(cpus?.length ? { cpus } : {}),
      exec: (cmd, args, opts) => run(...enter(cmd, args), opts),
      ip: (...args) => run('ip', ['-n', name, ...args]),
      spawn: (cmd, args, opts) => this.track(spawn(...enter(cmd, args), { stdio: ['ignore', 'pipe', 'pipe'], ...opts })),
    };
  }

  private track(child: ChildProcess): ChildProcess {
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  /** Names of namespaces created so far. */
  list(): readonly string[] {
    return this.namespaces;
  }

  /** Kills this run's processes (SIGTERM, then SIGKILL) and deletes its namespaces. Idempotent. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    const alive = [...this.children].filter((c) => c.exitCode === null && c.signalCode === null);
    for (const c of alive) c.kill('SIGTERM');
    const deadline = Date.now() + 3000;
    for (const c of alive) {
      while (c.exitCode === null && c.signalCode === null && Date.now() < deadline) {
        await sleep(20);
      }
      if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    }
    for (const ns of [...this.namespaces].reverse()) {
      try {
        run('ip', ['netns', 'del', ns]);
      } catch {
        // Already gone; nothing else of ours can be inside it.
      }
    }
    this.namespaces.length = 0;
  }

  /** Removes every namespace whose name starts with `prefix-` (for `flannelctl lab down`). */
  static removeByPrefix(prefix: string): string[] {
    const out = run('ip', ['netns', 'list']);
    const removed: string[] = [];
    for (const line of out.split('\n')) {
      const name = line.split(' ')[0];
      if (name && name.startsWith(prefix + '-')) {
        try {
          run('ip', ['netns', 'del', name]);
          removed.push(name);
        } catch {
          // Removed meanwhile (e.g. by the lab's own teardown): nothing left to do.
        }
      }
    }
    return removed;
  }
}

/** A veth pair between two namespaces, addressed and up. */
export function vethPair(a: Namespace, aName: string, b: Namespace, bName: string): void {
  a.ip('link', 'add', aName, 'type', 'veth', 'peer', 'name', bName, 'netns', b.name);
  a.ip('link', 'set', aName, 'up');
  b.ip('link', 'set', bName, 'up');
}
