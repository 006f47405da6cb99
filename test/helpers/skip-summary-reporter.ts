// A node:test reporter that runs next to the TAP one (see package.json's test script) and prints one line
// at the end: the skipped tests and suites counted by the Debian package their skip reason names, and the
// single apt-get line that enables them all. The reasons come from test/helpers/prereq.ts.
import type { TestEvent } from 'node:test/reporters';
import { packagesInText } from '../../src/util/system-packages.js';

/** The summary line for these skip reasons (a reason naming two packages counts under both). */
export function skipSummary(reasons: readonly string[]): string {
  if (reasons.length === 0) return '# skipped by missing package: nothing skipped';
  const byPackage = new Map<string, number>();
  const other = new Map<string, number>();
  for (const reason of reasons) {
    const pkgs = packagesInText(reason);
    if (pkgs.length === 0) other.set(reason, (other.get(reason) ?? 0) + 1);
    for (const p of new Set(pkgs)) byPackage.set(p, (byPackage.get(p) ?? 0) + 1);
  }
  const count = (m: Map<string, number>): string =>
    [...m].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([k, n]) => `${k} ${n}`).join(', ');
  const parts = [`# skipped by missing package: ${byPackage.size ? count(byPackage) : 'none'} (of ${reasons.length} skipped tests and suites)`];
  if (other.size) parts.push(`other reasons: ${count(other)}`);
  if (byPackage.size) parts.push(`to run them all: apt-get install ${[...byPackage.keys()].sort().join(' ')}`);
  return parts.join('; ');
}

export default async function* skipSummaryReporter(source: AsyncIterable<TestEvent>): AsyncGenerator<string> {
  const reasons: string[] = [];
  for await (const ev of source) {
    if (ev.type !== 'test:pass' || !ev.data.skip) continue;
    reasons.push(typeof ev.data.skip === 'string' ? ev.data.skip : '(no reason given)');
  }
  yield skipSummary(reasons) + '\n';
}
