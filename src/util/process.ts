// Processes this run started, ended by PID: a signal, a bounded wait, and SIGKILL when it must go.
import { sleep } from './sleep.js';

/** Whether a process with this PID exists (signal 0; EPERM also means it exists). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface KillOptions {
  /** First signal; default SIGTERM. */
  signal?: NodeJS.Signals;
  /** How long to wait for the exit; default 3 s. */
  graceMs?: number;
  /** SIGKILL when still alive after the grace period; default true. */
  thenKill?: boolean;
}

/**
 * Sends `signal` to each PID, waits until all have exited or the grace period ends, then SIGKILLs
 * what is left (unless `thenKill` is false). Returns the PIDs still alive at the end.
 */
export async function killAndWait(pids: number | readonly number[], o: KillOptions = {}): Promise<number[]> {
  const list = (typeof pids === 'number' ? [pids] : [...pids]).filter(isAlive);
  for (const pid of list) signalQuietly(pid, o.signal ?? 'SIGTERM');
  const deadline = Date.now() + (o.graceMs ?? 3000);
  while (list.some(isAlive) && Date.now() < deadline) await sleep(20);
  if (o.thenKill ?? true) {
    for (const pid of list) if (isAlive(pid)) signalQuietly(pid, 'SIGKILL');
    const killDeadline = Date.now() + 1000;
    while (list.some(isAlive) && Date.now() < killDeadline) await sleep(10);
  }
  return list.filter(isAlive);
}

function signalQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Exited meanwhile.
  }
}
