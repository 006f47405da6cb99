// The Debian packages flannelts and its tests use, read from system-packages.tsv at the package root (the
// one list README, the tests and CI share), so a missing program is named by the package that provides it;
// and whether a program is on PATH, so a command says what is missing before it starts anything.
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export type PackageNeed = 'required' | 'optional' | 'ci';

export interface SystemPackage {
  /** The Debian package, e.g. "etcd-server". */
  name: string;
  /** The programs the code looks for on PATH, e.g. ["etcd"]. */
  binaries: string[];
  need: PackageNeed;
  /** What it enables and what happens without it (one sentence, README's table). */
  enables: string;
}

const NEEDS: readonly PackageNeed[] = ['required', 'optional', 'ci'];

/** Parses the file's text; a malformed line throws naming its line number and what is wrong. */
export function parseSystemPackages(text: string): SystemPackage[] {
  const out: SystemPackage[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trimEnd();
    if (line === '' || line.startsWith('#')) return;
    const cols = line.split(/\t+/);
    const [name, bins, need, enables] = cols;
    const where = `system-packages.tsv line ${i + 1}`;
    if (cols.length !== 4 || !name || !bins || !need || !enables) {
      throw new Error(`${where}: want 4 tab-separated columns (package, binaries, need, enables), got ${cols.length}`);
    }
    if (!NEEDS.includes(need as PackageNeed)) throw new Error(`${where}: need "${need}" is not one of ${NEEDS.join(', ')}`);
    out.push({ name, binaries: bins === '-' ? [] : bins.split(','), need: need as PackageNeed, enables });
  });
  return out;
}

// dist/src/util/system-packages.js -> the package root, in a checkout and in an installed package alike.
const FILE = new URL('../../../system-packages.tsv', import.meta.url);

let cached: SystemPackage[] | undefined;

export function systemPackages(): SystemPackage[] {
  if (cached) return cached;
  let text: string;
  try {
    text = readFileSync(FILE, 'utf8');
  } catch (e) {
    // An image or package that left the file out: say which file, not a bare ENOENT.
    throw new Error(`flannelts: cannot read ${fileURLToPath(FILE)} (${(e as NodeJS.ErrnoException).code ?? String(e)}): ship it next to package.json`);
  }
  cached = parseSystemPackages(text);
  return cached;
}

/** The package that provides a program; throws when the list does not name it (keep the list whole). */
export function packageFor(binary: string): SystemPackage {
  const p = systemPackages().find((pkg) => pkg.binaries.includes(binary));
  if (!p) throw new Error(`system-packages.tsv names no package for "${binary}": add it there`);
  return p;
}

/** Whether an executable file `name` is in one of PATH's directories (as a shell's `command -v` finds it). */
export function hasBinary(name: string): boolean {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (!dir) continue;
    const file = join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      if (statSync(file).isFile()) return true;
    } catch {
      // Not here; PATH's next directory.
    }
  }
  return false;
}

/**
 * The one line a command prints when a program it needs is missing, or undefined when it is there:
 * "[<option> ]needs etcd (apt-get install etcd-server); <withoutIt>", where withoutIt says what the
 * command does instead (e.g. that it started nothing, and what works without the package).
 */
export function missingProgram(binary: string, withoutIt: string, option?: string): string | undefined {
  return hasBinary(binary) ? undefined : `${option ? `${option} ` : ''}${installHint(binary)}; ${withoutIt}`;
}

/** The lines of missingProgram() calls that found their program missing. */
export const missingLines = (lines: Array<string | undefined>): string[] => lines.filter((l): l is string => l !== undefined);

/** "needs etcd (apt-get install etcd-server)": the form every skip reason and missing-program message uses. */
export function installHint(binary: string): string {
  return `needs ${binary} (apt-get install ${packageFor(binary).name})`;
}

const HINT = /\(apt-get install ([a-z0-9][a-z0-9.+-]*)\)/g;

/** The packages an installHint-style text names, in order (a skip reason may join several hints). */
export function packagesInText(text: string): string[] {
  return [...text.matchAll(HINT)].map((m) => m[1]!);
}
