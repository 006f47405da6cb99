// A command run inside a namespace without blocking the event loop, its threads' CPU affinity sampled
// while it runs: how the bench proves that iperf3 and ping ran where the placement put them.
import { basename } from 'node:path';
import { readFileSync } from 'node:fs';
import { readThreadAffinity, type ThreadAffinity } from './affinity.js';
import type { Namespace } from './netns.js';

export interface WatchedRun {
  stdout: string;
  stderr: string;
  /** Exit code; null when killed (timeout). */
  code: number | null;
  /** Every thread seen while it ran, with its affinity at the last sample. */
  threads: ThreadAffinity[];
}

function comm(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/**
 * Runs `cmd args` in `ns` and samples its threads every `sampleMs`, counting only samples taken once
 * the PID is the command itself (before that it is still taskset or ip, about to exec). Killed after
 * `timeoutMs`.
 */
export function runWatched(ns: Namespace, cmd: string, args: string[], o: { timeoutMs: number; sampleMs?: number }): Promise<WatchedRun> {
  return new Promise((resolve, reject) => {
    const child = ns.spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const name = basename(cmd).slice(0, 15);
    const threads = new Map<number, ThreadAffinity>();
    const sample = (): void => {
      const pid = child.pid;
      if (pid === undefined || comm(pid) !== name) return;
      for (const t of readThreadAffinity(pid)) threads.set(t.tid, t);
    };
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('spawn', sample);
    const timer = setInterval(sample, o.sampleMs ?? 50);
    const deadline = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs);
    child.once('error', (e) => {
      clearInterval(timer);
      clearTimeout(deadline);
      reject(e);
    });
    child.once('close', (code) => {
      clearInterval(timer);
      clearTimeout(deadline);
      resolve({ stdout, stderr, code, threads: [...threads.values()] });
    });
  });
}
