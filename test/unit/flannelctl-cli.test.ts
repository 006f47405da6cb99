// flannelctl's argument checks that run before anything needs root.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const bin = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli', 'flannelctl.js');
const run = (args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 15_000 });

test('lab --userspace-nodes: only with --backend vxlan, at most --nodes, a whole number; each a one-line error, exit 2', () => {
  const cases: Array<[string[], RegExp]> = [
    [['lab', '--userspace-nodes', '1'], /--userspace-nodes needs --backend vxlan/],
    [['lab', '--backend', 'vxlan', '--nodes', '2', '--userspace-nodes', '3'], /--userspace-nodes 3 is more than --nodes 2/],
    [['lab', '--backend', 'vxlan', '--userspace-nodes', '-1'], /--userspace-nodes.*must be a whole number >= 0/],
    [['lab', '--backend', 'vxlan', '--userspace-nodes', 'x'], /must be a whole number >= 0/],
  ];
  for (const [args, msg] of cases) {
    const r = run(args);
    assert.notEqual(r.status, 0, args.join(' '));
    assert.match(r.stderr, msg, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
});

test('lab --help documents --userspace-nodes; bench --help lists the vxlan-userspace target', () => {
  assert.match(run(['lab', '--help']).stdout, /--userspace-nodes <n>\s+vxlan: the last N nodes run the userspace VXLAN VTEP/);
  assert.match(run(['bench', '--help']).stdout, /vxlan-userspace/);
});
