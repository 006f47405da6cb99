import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { VERSION } from '../../src/version.js';
import { readFileSync } from 'node:fs';
import { FLANNELD_NODE_FLAGS, flanneldShebang } from '../../src/config/node-flags.js';
import { ourFlanneld } from '../../src/lab/daemons.js';

const bin = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli', 'flanneld.js');
const run = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { PATH: process.env.PATH, ...env }, timeout: 15_000 });

test('--version prints the package version to stderr, as flannel does', () => {
  const r = run(['--version']);
  assert.equal(r.status, 0);
  assert.equal(r.stderr.trim(), VERSION);
  assert.equal(r.stdout, '');
  const pkg = JSON.parse(readFileSync(join(dirname(bin), '..', '..', '..', 'package.json'), 'utf8')) as { version: string };
  assert.equal(VERSION, pkg.version, 'src/version.ts is kept in step with package.json');
});

test('FLANNELD_VERSION does nothing: flannel checks -version before it reads the environment', () => {
  // The daemon goes on to start (and here fails on the missing kube settings): no version, no exit 0.
  const r = run([], { FLANNELD_VERSION: 'true', FLANNELD_KUBE_SUBNET_MGR: 'true', NODE_NAME: 'n1' });
  assert.equal(r.status, 1);
  assert.doesNotMatch(r.stderr, new RegExp(`^${VERSION.replace(/\./g, '\\.')}$`, 'm'));
  assert.match(r.stderr, /Failed to create SubnetManager/);
});

test('--help lists flags with defaults and exits 0', () => {
  const r = run(['--help']);
  assert.equal(r.status, 0);
  assert.match(r.stderr, /^Usage: flanneld \[OPTION\]\.\.\./);
  assert.match(r.stderr, /-etcd-endpoints string\n.*\(default "http:\/\/127.0.0.1:4001,http:\/\/127.0.0.1:2379"\)/);
});

test('an unknown flag is one line on stderr and exit code 2', () => {
  const r = run(['-bogus=1']);
  assert.equal(r.status, 2);
  assert.equal(r.stderr.trim().split('\n').length, 1);
  assert.match(r.stderr, /flag provided but not defined: -bogus/);
});

test('a bad FLANNELD_* value is logged naming the variable and ignored, as flannel does', () => {
  const r = run([], { FLANNELD_HEALTHZ_PORT: 'eighty', FLANNELD_IPTABLES_RESYNC: '0', FLANNELD_KUBE_SUBNET_MGR: 'true', NODE_NAME: 'n1' });
  // It goes on (to the kube client, which fails here for want of a kubeconfig): exit 1, not 2.
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^E\d{4} .*Failed to set flag FLANNELD from env: invalid integer value "eighty" for environment variable FLANNELD_HEALTHZ_PORT.*FLANNELD_HEALTHZ_PORT is ignored, -healthz-port keeps 0$/m);
  assert.match(r.stderr, /^E\d{4} .*invalid -iptables-resync 0: must be at least 1 second; FLANNELD_IPTABLES_RESYNC is ignored, -iptables-resync keeps 5$/m);
  assert.match(r.stderr, /CLI flags config: .*"iptablesResync":5/);
  assert.match(r.stderr, /Failed to create SubnetManager/);
});

test('a bad command-line value is exit 2 naming the flag (flannel prints its usage and exits 0: a deliberate difference)', () => {
  const r = run(['-iptables-resync=soon']);
  assert.equal(r.status, 2);
  assert.equal(r.stderr.trim().split('\n').length, 1);
  assert.match(r.stderr, /invalid integer value "soon" for flag -iptables-resync/);
});

test('-kube-subnet-mgr outside a pod without -kubeconfig-file / -kube-api-url: one clear error, exit 1', () => {
  const r = run(['-kube-subnet-mgr'], { NODE_NAME: 'n1' });
  assert.equal(r.status, 1);
  assert.doesNotMatch(r.stderr, /-kube-subnet-mgr is not implemented/);
  assert.match(r.stderr, /^E\d{4} .*Failed to create SubnetManager: no -kubeconfig-file or -kube-api-url given and not running in a pod \(KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are unset\)/m);
});

test('-kube-subnet-mgr without NODE_NAME or POD_NAME/POD_NAMESPACE says which variables to set', () => {
  const r = run(['-kube-subnet-mgr', '-kube-api-url=http://127.0.0.1:1']);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /set NODE_NAME, or POD_NAME and POD_NAMESPACE/);
});

test('-kube-subnet-mgr with an invalid -kube-annotation-prefix is refused before contacting anything', () => {
  const r = run(['-kube-subnet-mgr', '-kube-api-url=http://127.0.0.1:1', '-kube-annotation-prefix=a/b/c'], { NODE_NAME: 'n1' });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /invalid -kube-annotation-prefix "a\/b\/c": it can contain at most a single "\/"/);
});

test('the node flags flanneld runs with agree: its shebang (source and build) and how the lab spawns it', () => {
  const src = join(dirname(bin), '..', '..', '..', 'src', 'cli', 'flanneld.ts');
  for (const file of [src, bin]) {
    const first = readFileSync(file, 'utf8').split('\n')[0];
    assert.equal(first, flanneldShebang(), `${file} starts with the shebang for FLANNELD_NODE_FLAGS`);
  }
  assert.match(flanneldShebang(), /^#!\/usr\/bin\/env -S node --max-semi-space-size=\d+ --no-opt$/);
  const cmd = ourFlanneld();
  assert.deepEqual(cmd.slice(0, -1), [process.execPath, ...FLANNELD_NODE_FLAGS]);
  assert.equal(cmd.at(-1), bin);
});

test('flanneld started through its shebang runs with those flags', () => {
  // What the kernel does for `flanneld` run from the npm bin link (tsc does not mark the build
  // executable, npm does): interpreter and its one argument from the shebang, then the script.
  const [interp, arg] = flanneldShebang().slice(2).split(/ (.*)/s);
  const r = spawnSync(interp!, [arg!, bin, '--version'], { encoding: 'utf8', env: { PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}` }, timeout: 15_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr.trim(), VERSION);
});
