// Installing a file the way flannel's cmd/install_conf (pkg/utils CopyFileAtomic) does, for the
// manifest's install-cni init container: the CNI conflist appears whole or not at all. The copy goes to
// a temp file in the target's directory whose name ends in neither .conf, .conflist nor .json (a
// runtime scanning /etc/cni/net.d never loads half a file), is fsynced, gets the source's mode, and
// is renamed over the target.
//
// Beyond flannel: the source is opened before anything is created, so a missing source leaves no temp
// file behind (flannel creates the temp file first and leaves it there); the directory is fsynced
// after the rename so the new name survives a crash.
import { closeSync, fchmodSync, fstatSync, fsyncSync, openSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';

/** The temp file next to `dest`: ".<name>.tmp<random>", as flannel's os.CreateTemp pattern makes it. */
export function tempPathFor(dest: string, random: string = randomBytes(6).toString('hex')): string {
  return join(dirname(dest), `.${basename(dest)}.tmp${random}`);
}

const reason = (e: unknown): string => {
  const err = e as NodeJS.ErrnoException;
  return err.code ? `${err.code} (${err.syscall ?? 'fs'} ${err.path ?? ''})`.replace(/ \)$/, ')') : err.message;
};

/** Copies `src` over `dest` atomically; throws an Error saying which step failed. `dest` is untouched on error. */
export function installFileAtomic(src: string, dest: string): void {
  let srcFd: number;
  try {
    srcFd = openSync(src, 'r');
  } catch (e) {
    throw new Error(`cannot open source ${src}: ${reason(e)}`);
  }
  let tmp: string | undefined;
  let fd: number | undefined;
  try {
    const st = fstatSync(srcFd);
    if (!st.isFile()) throw new Error(`source ${src} is not a regular file`);
    const candidate = tempPathFor(dest);
    try {
      fd = openSync(candidate, 'wx', 0o600);
    } catch (e) {
      throw new Error(`cannot create a temp file in ${dirname(dest)}: ${reason(e)}`);
    }
    tmp = candidate;
    const buf = Buffer.allocUnsafe(64 * 1024);
    for (let n = readSync(srcFd, buf, 0, buf.length, null); n > 0; n = readSync(srcFd, buf, 0, buf.length, null)) {
      for (let off = 0; off < n; ) off += writeSync(fd, buf, off, n - off);
    }
    fchmodSync(fd, st.mode & 0o7777);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, dest);
    tmp = undefined;
    syncDirectory(dirname(dest));
  } catch (e) {
    if (e instanceof Error && !(e as NodeJS.ErrnoException).code) throw e;
    throw new Error(`cannot install ${dest}: ${reason(e)}`);
  } finally {
    closeSync(srcFd);
    if (fd !== undefined) closeSync(fd);
    if (tmp !== undefined) rmSync(tmp, { force: true });
  }
}

/** The rename is durable once the directory entry is on disk; a directory that cannot be fsynced (some
 *  network file systems) is not an error: the file itself already is. */
function syncDirectory(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // best effort, see above
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
