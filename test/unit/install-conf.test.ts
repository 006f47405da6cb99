// /opt/bin/install-conf (src/cli/install-conf.ts): flannel's cmd/install_conf contract as the
// manifest's install-cni init container relies on it, run as a program with this Node.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import { installFileAtomic, tempPathFor } from '../../src/cli/atomic-install.js';

const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli', 'install-conf.js');
const root = mkdtempSync(join(tmpdir(), 'flannelts-install-conf-'));
after(() => rmSync(root, { recursive: true, force: true }));

let n = 0;
/** A fresh source dir with cni-conf.json and a target dir holding an older 10-flannel.conflist. */
function fixture(): { src: string; dest: string; destDir: string } {
  const dir = join(root, String(n++));
  mkdirSync(join(dir, 'cfg'), { recursive: true });
  mkdirSync(join(dir, 'net.d'));
  const src = join(dir, 'cfg', 'cni-conf.json');
  writeFileSync(src, '{"name":"cbr0","cniVersion":"0.3.1","plugins":[{"type":"flannel"}]}\n');
  const dest = join(dir, 'net.d', '10-flannel.conflist');
  writeFileSync(dest, 'old\n');
  chmodSync(dest, 0o600);
  return { src, dest, destDir: join(dir, 'net.d') };
}

const run = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });

test('install-conf with other than two arguments prints the usage and exits 1', () => {
  const { src, dest } = fixture();
  for (const args of [[], [src], [src, dest, dest]]) {
    const r = run(...args);
    assert.equal(r.status, 1, `args ${JSON.stringify(args)}`);
    assert.equal(r.stderr, 'usage: install-conf <src> <dest>\n');
    assert.equal(r.stdout, '');
  }
  assert.equal(readFileSync(dest, 'utf8'), 'old\n');
});

test('install-conf replaces the target with the source content and mode, by rename, leaving no temp file', () => {
  const { src, dest, destDir } = fixture();
  chmodSync(src, 0o640);
  const inodeBefore = statSync(dest).ino;
  const r = run(src, dest);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, '');
  assert.equal(readFileSync(dest, 'utf8'), readFileSync(src, 'utf8'));
  assert.equal(statSync(dest).mode & 0o7777, 0o640);
  assert.notEqual(statSync(dest).ino, inodeBefore, 'a new file renamed into place, not the old one rewritten');
  assert.deepEqual(readdirSync(destDir), ['10-flannel.conflist']);
});

test('install-conf creates a missing target and copies a large source whole', () => {
  const { src, dest } = fixture();
  rmSync(dest);
  const big = Buffer.alloc(300_000, 'x');
  writeFileSync(src, big);
  assert.equal(run(src, dest).status, 0);
  assert.deepEqual(readFileSync(dest), big);
});

test('a missing source: one line naming it, exit 1, the target untouched and no temp file', () => {
  const { src, dest, destDir } = fixture();
  rmSync(src);
  const r = run(src, dest);
  assert.equal(r.status, 1);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.ok(lines[0]!.includes(`"${src}"`), lines[0]);
  assert.match(lines[0]!, /ENOENT/);
  assert.equal(readFileSync(dest, 'utf8'), 'old\n');
  assert.equal(statSync(dest).mode & 0o7777, 0o600);
  assert.deepEqual(readdirSync(destDir), ['10-flannel.conflist']);
});

test('a target directory that does not exist, or a source that is a directory: exit 1, one line', () => {
  const { src, dest } = fixture();
  const r = run(src, join(dirname(dest), 'missing', '10-flannel.conflist'));
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^install-conf: error installing ".*cni-conf\.json": cannot create a temp file in .*missing: ENOENT/);
  assert.equal(r.stderr.trimEnd().split('\n').length, 1);
  const d = run(dirname(src), dest);
  assert.equal(d.status, 1);
  assert.match(d.stderr, /is not a regular file/);
  assert.equal(readFileSync(dest, 'utf8'), 'old\n');
});

test('the temp file sits next to the target and never ends in .conf, .conflist or .json', () => {
  for (const name of ['10-flannel.conflist', '10-flannel.conf', 'flannel.json']) {
    const dest = join('/etc/cni/net.d', name);
    const tmp = tempPathFor(dest);
    assert.equal(dirname(tmp), '/etc/cni/net.d');
    assert.doesNotMatch(basename(tmp), /\.(conf|conflist|json)$/, tmp);
    assert.ok(basename(tmp).startsWith(`.${name}.tmp`), tmp);
    assert.notEqual(tempPathFor(dest), tmp, 'a random part, as os.CreateTemp adds');
  }
});

test('installFileAtomic throws naming the step and leaves the target as it was', () => {
  const { src, dest } = fixture();
  assert.throws(() => installFileAtomic(src + '.nope', dest), /cannot open source .*cni-conf\.json\.nope: ENOENT/);
  assert.equal(readFileSync(dest, 'utf8'), 'old\n');
});
