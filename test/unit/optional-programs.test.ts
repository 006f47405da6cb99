// Optional programs are named, never a bare failure: with PATH pointing at a directory that lacks them,
// `flannelctl lab --store etcd`, `lab --ip-masq` and `bench` say so in one line per program, naming its
// Debian package (from system-packages.tsv) and what they do instead, and start nothing. No root needed:
// the check comes before the root check, and the stand-in programs only record that they were run.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hasBinary, missingProgram } from '../../src/util/system-packages.js';
import { labMissingPrograms } from '../../src/lab/programs.js';
import { benchMissingPrograms } from '../../src/bench/programs.js';

const flannelctl = fileURLToPath(new URL('../../src/cli/flannelctl.js', import.meta.url));
let dir = '';
let empty = '';
let tools = '';
/** Stand-in programs write here when run: nothing may run before the message. */
let ranLog = '';

/** An executable in `tools` that records its name and exits 1. */
function standIn(name: string): void {
  const file = join(tools, name);
  writeFileSync(file, `#!/bin/sh\necho ${name} >> ${ranLog}\nexit 1\n`);
  chmodSync(file, 0o755);
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'ft-programs-'));
  empty = join(dir, 'empty');
  tools = join(dir, 'tools');
  ranLog = join(dir, 'ran.log');
  mkdirSync(empty);
  mkdirSync(tools);
  standIn('ip');
  // Present but not executable, and a directory with a program's name: neither counts.
  writeFileSync(join(tools, 'etcd'), '#!/bin/sh\n');
  mkdirSync(join(tools, 'iperf3'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** Runs fn with PATH set to `path` (the checks read PATH when called). */
function withPath<T>(path: string, fn: () => T): T {
  const saved = process.env.PATH;
  process.env.PATH = path;
  try {
    return fn();
  } finally {
    process.env.PATH = saved;
  }
}

test('hasBinary: an executable file on PATH, not a plain file, not a directory, not an empty PATH', () => {
  withPath(`${empty}:${tools}`, () => {
    assert.equal(hasBinary('ip'), true);
    assert.equal(hasBinary('etcd'), false, 'not executable');
    assert.equal(hasBinary('iperf3'), false, 'a directory');
    assert.equal(hasBinary('tcpdump'), false);
  });
  withPath('', () => assert.equal(hasBinary('ip'), false));
  assert.equal(hasBinary('sh'), true, 'this machine has a shell on PATH');
});

test('missingProgram: one line naming the program, its package and what happens instead; nothing when present', () => {
  withPath(empty, () => {
    assert.equal(missingProgram('etcd', 'it does X instead'), 'needs etcd (apt-get install etcd-server); it does X instead');
    assert.equal(missingProgram('iptables-restore', 'Y', '-ip-masq'), '-ip-masq needs iptables-restore (apt-get install iptables); Y');
  });
  withPath(tools, () => assert.equal(missingProgram('ip', 'unused'), undefined));
});

test('labMissingPrograms: iproute2 always, etcd for --store etcd, iptables for -ip-masq', () => {
  withPath(tools, () => {
    assert.deepEqual(labMissingPrograms({ store: 'file' }), []);
    assert.deepEqual(labMissingPrograms({ store: 'kube', daemonArgs: ['-v=2'] }), []);
    assert.deepEqual(labMissingPrograms({ store: 'etcd', daemonArgs: ['-ip-masq'] }), [
      '--store etcd needs etcd (apt-get install etcd-server); nothing was started: install it, or use --store file (the default) or --store kube, which need no package',
      '-ip-masq needs iptables-restore (apt-get install iptables); nothing was started: install it, or leave out -ip-masq',
    ]);
    assert.equal(labMissingPrograms({ daemonArgs: ['--ip-masq=true'] }).length, 1);
    assert.deepEqual(labMissingPrograms({ daemonArgs: ['-ip-masq=false'] }), []);
  });
  withPath(empty, () => assert.deepEqual(labMissingPrograms({}), ['needs ip (apt-get install iproute2); nothing was started: the lab builds its namespaces, links and addresses with it']));
});

test('benchMissingPrograms: iperf3 unless only the steady-lease step runs, etcd for another flanneld', () => {
  withPath(tools, () => {
    const iperf = 'needs iperf3 (apt-get install iperf3); nothing was started: iperf3 measures the TCP and UDP throughput; install it, or run --only steady-leases, which needs no package';
    const etcd = '--flanneld needs etcd (apt-get install etcd-server); nothing was started: the other flanneld keeps its leases in a real etcd; install it, or leave out --flanneld';
    assert.deepEqual(benchMissingPrograms({}), [iperf]);
    assert.deepEqual(benchMissingPrograms({ only: ['steady-leases'] }), []);
    assert.deepEqual(benchMissingPrograms({ only: ['udp', 'steady-leases'] }), [iperf]);
    assert.deepEqual(benchMissingPrograms({ flanneld: '/opt/flanneld' }), [iperf, etcd]);
    assert.deepEqual(benchMissingPrograms({ flanneld: '/opt/flanneld', only: ['udp'] }), [iperf], 'flanneld-udp not asked for');
  });
});

/** flannelctl with PATH = tools only and its own TMPDIR; asserts that it ran no program and made no file. */
function flannelctlWithout(args: string[]): { status: number | null; stderr: string; stdout: string } {
  const tmp = mkdtempSync(join(dir, 'tmp-'));
  const r = spawnSync(process.execPath, [flannelctl, ...args], { encoding: 'utf8', env: { ...process.env, PATH: tools, TMPDIR: tmp }, timeout: 30_000 });
  assert.ok(!existsSync(ranLog), 'no program was run');
  assert.deepEqual(readdirSync(tmp), [], 'no lab directory made');
  assert.ok(!existsSync(join(dir, 'results')), 'no results directory made');
  return { status: r.status, stderr: r.stderr, stdout: r.stdout };
}

test('flannelctl lab --store etcd / --ip-masq and bench without their programs: one line each, exit 1, nothing started', () => {
  let r = flannelctlWithout(['lab', '--store', 'etcd']);
  assert.equal(r.status, 1);
  assert.equal(r.stderr, 'flannelctl lab: --store etcd needs etcd (apt-get install etcd-server); nothing was started: install it, or use --store file (the default) or --store kube, which need no package\n');
  assert.equal(r.stdout, '');
  r = flannelctlWithout(['lab', '--ip-masq']);
  assert.equal(r.status, 1);
  assert.equal(r.stderr, 'flannelctl lab: -ip-masq needs iptables-restore (apt-get install iptables); nothing was started: install it, or leave out -ip-masq\n');
  r = flannelctlWithout(['bench', '--flanneld', '/opt/flanneld', '--out', join(dir, 'results')]);
  assert.equal(r.status, 1);
  assert.deepEqual(r.stderr.trimEnd().split('\n'), [
    'flannelctl bench: needs iperf3 (apt-get install iperf3); nothing was started: iperf3 measures the TCP and UDP throughput; install it, or run --only steady-leases, which needs no package',
    'flannelctl bench: --flanneld needs etcd (apt-get install etcd-server); nothing was started: the other flanneld keeps its leases in a real etcd; install it, or leave out --flanneld',
  ]);
  assert.equal(r.stdout, '');
});
