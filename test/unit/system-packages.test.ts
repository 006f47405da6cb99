// system-packages.tsv is the one list of Debian packages: these tests keep README's table, the shell
// scripts and the tests' prerequisites equal to it, and check the skip summary the test run ends with.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { installHint, packageFor, packagesInText, parseSystemPackages, systemPackages } from '../../src/util/system-packages.js';
import { skipSummary } from '../helpers/skip-summary-reporter.js';

const repo = fileURLToPath(new URL('../../../', import.meta.url));

/** This run's environment without NODE_TEST_CONTEXT (a child `node --test` would report to us, not print). */
function childEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NODE_TEST_CONTEXT;
  return env;
}

test('system-packages.tsv parses: names and binaries unique, every need known', () => {
  const pkgs = systemPackages();
  assert.ok(pkgs.length >= 5);
  const names = pkgs.map((p) => p.name);
  assert.equal(new Set(names).size, names.length, 'a package listed twice');
  const bins = pkgs.flatMap((p) => p.binaries);
  assert.equal(new Set(bins).size, bins.length, 'a binary under two packages');
  assert.ok(pkgs.some((p) => p.need === 'required' && p.name === 'iproute2'));
});

test('parseSystemPackages: columns by tabs, "-" for no binary, a bad line named by number', () => {
  const text = '# comment\n\nfoo\tfoo-bin,foo2\t\toptional\tenables foo\nbar\t-\tci\tCI only\n';
  assert.deepEqual(parseSystemPackages(text), [
    { name: 'foo', binaries: ['foo-bin', 'foo2'], need: 'optional', enables: 'enables foo' },
    { name: 'bar', binaries: [], need: 'ci', enables: 'CI only' },
  ]);
  assert.throws(() => parseSystemPackages('# x\nfoo\tfoo\toptional\n'), /line 2: want 4 tab-separated columns/);
  assert.throws(() => parseSystemPackages('foo\tfoo\tsometimes\tx\n'), /line 1: need "sometimes" is not one of required, optional, ci/);
});

test('packageFor / installHint name the package; an unlisted program is refused by name', () => {
  assert.equal(packageFor('etcd').name, 'etcd-server');
  assert.equal(packageFor('iptables-restore').name, 'iptables');
  assert.equal(installHint('iperf3'), 'needs iperf3 (apt-get install iperf3)');
  assert.throws(() => packageFor('ping'), /names no package for "ping"/, 'nothing needs ping: the lab, bench and tests use our prober');
  assert.throws(() => packageFor('no-such-tool'), /names no package for "no-such-tool": add it there/);
  assert.deepEqual(packagesInText(`${installHint('etcd')}; ${installHint('tcpdump')}; needs root`), ['etcd-server', 'tcpdump']);
});

test('every binary the tests ask for is in the list', () => {
  const asked = new Set<string>();
  for (const dir of ['unit', 'integration', 'netns']) {
    for (const f of readdirSync(join(repo, 'test', dir)).filter((n) => n.endsWith('.ts'))) {
      for (const m of readFileSync(join(repo, 'test', dir, f), 'utf8').matchAll(/\bbinary\('([^']+)'\)/g)) asked.add(m[1]!);
    }
  }
  assert.ok(asked.has('etcd') && asked.has('tcpdump'), `found ${[...asked].join(', ')}`);
  for (const b of asked) assert.doesNotThrow(() => packageFor(b), b);
});

test('README "Requirements": one table row per required and optional package, equal to the file, and its two install lines', () => {
  const readme = readFileSync(join(repo, 'README.md'), 'utf8');
  const start = readme.indexOf('\n## Requirements\n');
  assert.ok(start >= 0, 'README has a "## Requirements" section');
  const section = readme.slice(start + 1, readme.indexOf('\n## ', start + 1));
  const listed = systemPackages().filter((p) => p.need !== 'ci');
  const rows = section.split('\n').filter((l) => l.startsWith('| `'));
  assert.deepEqual(rows, listed.map((p) => `| \`${p.name}\` | ${p.need} | ${p.enables} |`));
  const names = (need: string): string => systemPackages().filter((p) => p.need === need).map((p) => p.name).join(' ');
  assert.ok(section.includes(`\nsudo apt-get install -y ${names('required')}\n`), 'the requirements install line');
  assert.ok(section.includes(`\nsudo apt-get install -y ${names('optional')}   #`), 'the optional install line');
});

test('.ci/system-packages prints the file\'s packages by need (what .ci/run and the fresh root install)', () => {
  const run = (...needs: string[]): string[] => {
    const r = spawnSync(join(repo, '.ci', 'system-packages'), needs, { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.split('\n').filter(Boolean);
  };
  const pkgs = systemPackages();
  assert.deepEqual(run('required', 'optional', 'ci'), pkgs.map((p) => p.name));
  assert.deepEqual(run('ci'), pkgs.filter((p) => p.need === 'ci').map((p) => p.name));
  assert.match(readFileSync(join(repo, '.ci', 'run'), 'utf8'), /\.ci\/system-packages required optional ci\)/);
});

test('skipSummary: counts by package (a reason with two counts under both), other reasons apart, one apt-get line', () => {
  const line = skipSummary([
    installHint('iperf3'),
    installHint('iperf3'),
    `${installHint('etcd')}; ${installHint('iperf3')}`,
    'needs root (network namespaces, TUN devices)',
  ]);
  assert.equal(line, '# skipped by missing package: iperf3 3, etcd-server 1 (of 4 skipped tests and suites); other reasons: needs root (network namespaces, TUN devices) 1; to run them all: apt-get install etcd-server iperf3');
  assert.equal(skipSummary([]), '# skipped by missing package: nothing skipped');
  assert.equal(skipSummary(['needs /dev/net/tun']), '# skipped by missing package: none (of 1 skipped tests and suites); other reasons: needs /dev/net/tun 1');
});

test('the reporter next to TAP: TAP\'s summary lines stay and the skip line is added', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ft-skip-summary-'));
  try {
    const file = join(dir, 'sample.test.mjs');
    writeFileSync(file, [
      "import { describe, it, test } from 'node:test';",
      `describe('suite', { skip: ${JSON.stringify(installHint('iperf3'))} }, () => { it('x', () => {}); });`,
      `test('one', (t) => { t.skip(${JSON.stringify(installHint('etcd'))}); });`,
      "test('two', () => {});",
    ].join('\n'));
    const reporter = join(repo, 'dist', 'test', 'helpers', 'skip-summary-reporter.js');
    const r = spawnSync(process.execPath, ['--test', '--test-reporter=tap', '--test-reporter-destination=stdout', `--test-reporter=${reporter}`, '--test-reporter-destination=stdout', file], { encoding: 'utf8', env: childEnv() });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    for (const want of ['# tests 2', '# pass 1', '# fail 0', '# skipped 1']) assert.ok(lines.includes(want), `${want} in\n${r.stdout}`);
    // Both reporters write to stdout at the end; which of their last lines comes first is not fixed.
    const want = '# skipped by missing package: etcd-server 1, iperf3 1 (of 2 skipped tests and suites); to run them all: apt-get install etcd-server iperf3';
    assert.equal(lines.filter((l) => l === want).length, 1, r.stdout);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
