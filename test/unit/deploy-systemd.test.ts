// deploy/flanneld.service and deploy/flanneld.env.example: a Type=notify unit (READY=1 comes from
// the addon, see sd-notify.test.ts) reading FLANNELD_* options that our flag parser takes.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { FLANNELD_FLAGS, parseFlags, toOptions } from '../../src/config/flags.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const unitText = readFileSync(join(root, 'deploy', 'flanneld.service'), 'utf8');
const envText = readFileSync(join(root, 'deploy', 'flanneld.env.example'), 'utf8');

/** "[Section]" and "Key=Value" lines of a unit file; comments and blank lines skipped. */
function unitSections(text: string): Map<string, Map<string, string[]>> {
  const out = new Map<string, Map<string, string[]>>();
  let section: Map<string, string[]> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const head = /^\[(.+)\]$/.exec(line);
    if (head) {
      section = new Map();
      out.set(head[1]!, section);
      continue;
    }
    const eq = line.indexOf('=');
    assert.ok(section && eq > 0, `unit line outside a section or without "=": ${line}`);
    const key = line.slice(0, eq);
    section.set(key, [...(section.get(key) ?? []), line.slice(eq + 1)]);
  }
  return out;
}

const envLines = (text: string): Array<[string, string]> =>
  text.split('\n').filter((l) => l.trim() !== '' && !l.trimStart().startsWith('#')).map((l) => {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(l);
    assert.ok(m, `not KEY=value: ${l}`);
    return [m[1]!, m[2]!];
  });

test('flanneld.service: Type=notify from the main process, options from an EnvironmentFile, /opt/bin/flanneld', () => {
  const s = unitSections(unitText);
  const service = s.get('Service')!;
  assert.deepEqual(service.get('Type'), ['notify']);
  assert.deepEqual(service.get('NotifyAccess'), ['main'], 'READY=1 comes from flanneld itself');
  assert.deepEqual(service.get('EnvironmentFile'), ['/etc/flannel/flanneld.env']);
  assert.deepEqual(service.get('ExecStart'), ['/opt/bin/flanneld']);
  assert.deepEqual(service.get('Restart'), ['on-failure']);
  assert.deepEqual(s.get('Install')?.get('WantedBy'), ['multi-user.target']);
  assert.ok(s.get('Unit')?.get('After')?.includes('network-online.target'));
});

test('flanneld.env.example: every key is a FLANNELD_<flag> our parser knows and takes, for etcd mode', () => {
  const known = new Set(FLANNELD_FLAGS.map((f) => `FLANNELD_${f.name.toUpperCase().replace(/-/g, '_')}`));
  const lines = envLines(envText);
  assert.ok(lines.length >= 5);
  for (const [k] of lines) assert.ok(known.has(k), `${k} is not a flanneld flag`);
  const opts = toOptions(parseFlags([], Object.fromEntries(lines)));
  assert.equal(opts.kubeSubnetMgr, false);
  assert.equal(opts.subnetStoreDir, '', 'etcd mode, not the file store');
  assert.deepEqual(opts.etcdEndpoints, ['https://198.18.0.1:2379', 'https://198.18.0.2:2379', 'https://198.18.0.3:2379']);
  assert.equal(opts.etcdCAFile, '/etc/flannel/etcd-ca.crt');
  assert.equal(opts.ipMasq, true);
  assert.equal(opts.healthzPort, 8081);
});

test('the examples use documentation addresses only (198.18.0.0/15), never private ranges', () => {
  for (const text of [unitText, envText]) {
    for (const ip of text.match(/\b\d{1,3}(?:\.\d{1,3}){3}\b/g) ?? []) {
      const [a, b] = ip.split('.').map(Number);
      assert.ok(a === 198 && (b === 18 || b === 19) || ip === '127.0.0.1', `address ${ip} outside 198.18.0.0/15`);
    }
  }
});
