// The embedded store's directory lock: a file holding the holder's PID, created with O_EXCL; a lock
// whose PID is dead is stale and broken. Replacing a file that is not ours (reclaiming an expired
// lease) and renewing ours happen under it, so a renewal cannot resurrect a lease another process has
// just reclaimed.
import { closeSync, linkSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { log } from '../../log.js';
import { isAlive } from '../../util/process.js';
import { sleep } from '../../util/sleep.js';
import { uniqueSuffix } from './lease-file.js';

export class DirLock {
  constructor(
    readonly path: string,
    private readonly timeoutMs: number,
  ) {}

  /** Runs `fn` holding the lock. */
  async run<T>(fn: () => T): Promise<T> {
    const lockPath = this.path;
    const deadline = Date.now() + this.timeoutMs;
    for (let delay = 2; ; delay = Math.min(delay * 2, 50)) {
      try {
        const fd = openSync(lockPath, 'wx', 0o644);
        try {
          writeSync(fd, `${process.pid}\n`);
        } finally {
          closeSync(fd);
        }
        break;
      } catch (e) {
        if (errnoCode(e) !== 'EEXIST') throw e;
      }
      this.breakStale(lockPath);
      if (Date.now() > deadline) {
        throw new Error(`file store: lock ${lockPath} held too long by PID ${readPid(lockPath) ?? '?'}; remove it if that process is gone`);
      }
      await sleep(delay);
    }
    try {
      return fn();
    } finally {
      rmSync(lockPath, { force: true });
    }
  }


  /**
   * Removes the lock if its holder is dead. Rename (atomic, one winner) rather than unlink, then re-check
   * the renamed file's PID: if a live process had re-taken the lock in between, put it back.
   */
  private breakStale(lockPath: string): void {
    const pid = readPid(lockPath);
    // An empty lock file is a holder between open and write; only a dead PID is stale.
    if (pid === undefined || isAlive(pid)) return;
    const aside = `${lockPath}.stale.${uniqueSuffix()}`;
    try {
      renameSync(lockPath, aside);
    } catch {
      return;
    }
    const movedPid = readPid(aside);
    if (movedPid !== undefined && movedPid !== pid && isAlive(movedPid)) {
      try {
        linkSync(aside, lockPath);
      } catch {
        // Someone else holds a new lock now; the live holder we moved will remove its lock path anyway.
      }
    } else {
      log.warning(`file store: removed stale lock of dead PID ${pid}`);
    }
    rmSync(aside, { force: true });
  }
}

function errnoCode(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException).code;
}

function readPid(path: string): number | undefined {
  try {
    const n = Number.parseInt(readFileSync(path, 'utf8').trim(), 10);
    return Number.isSafeInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}
