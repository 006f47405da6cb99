// Golden shapes of what users and scrapers read: `flannelctl status --json` (key paths and value types)
// and /metrics (metric names, types and label names), from real daemons with the udp backend and the
// userspace VXLAN VTEP and userspace WireGuard. Restructuring must not change them; a deliberate change rewrites the fixture
// with UPDATE_GOLDEN=1 and shows up in the diff.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Lab } from '../../src/lab/lab.js';
import { fetchStatus } from '../../src/status.js';
import { need, rootAndNetns, suiteNeeds } from '../helpers/prereq.js';
import { useLab } from '../helpers/lab.js';

const GOLDEN_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'test', 'fixtures', 'golden');
const HEALTHZ_PORT = 10257;

/** Every key path with the JSON type of its value; arrays are described by the union of their elements. */
export function jsonShape(v: unknown, path = '$', out = new Map<string, Set<string>>()): Map<string, Set<string>> {
  const add = (p: string, t: string) => (out.get(p) ?? out.set(p, new Set()).get(p)!).add(t);
  if (Array.isArray(v)) {
    add(path, 'array');
    for (const e of v) jsonShape(e, `${path}[]`, out);
  } else if (v !== null && typeof v === 'object') {
    add(path, 'object');
    // Maps keyed by data (drop reasons, offload names) are part of the shape too: their keys are fixed names.
    for (const [k, e] of Object.entries(v)) jsonShape(e, `${path}.${k}`, out);
  } else {
    add(path, v === null ? 'null' : typeof v);
  }
  return out;
}

function shapeLines(v: unknown): string[] {
  return [...jsonShape(v)].map(([p, t]) => `${p}: ${[...t].sort().join('|')}`).sort();
}

/** "# TYPE name kind" plus the label names each metric's samples carry. */
export function metricShape(text: string): string[] {
  const labels = new Map<string, Set<string>>();
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    const t = /^# TYPE (\S+) (\S+)/.exec(line);
    if (t) {
      types.set(t[1]!, t[2]!);
      continue;
    }
    const s = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})? /.exec(line);
    if (!s) continue;
    const names = (s[2] ?? '').split(/,(?=[a-zA-Z_][a-zA-Z0-9_]*=")/).filter(Boolean).map((kv) => kv.split('=')[0]!);
    const set = labels.get(s[1]!) ?? labels.set(s[1]!, new Set()).get(s[1]!)!;
    for (const n of names) set.add(n);
  }
  // Histogram/summary samples (_bucket, _sum, _count) belong to their family; default process metrics
  // are prom-client's, not ours.
  return [...types]
    .filter(([name]) => name.startsWith('flannel'))
    .map(([name, kind]) => `${name} ${kind} {${[...(labels.get(name) ?? [])].sort().join(',')}}`)
    .sort();
}

function compareGolden(name: string, lines: string[]): void {
  const file = join(GOLDEN_DIR, name);
  const text = lines.join('\n') + '\n';
  if (process.env.UPDATE_GOLDEN === '1' || !existsSync(file)) {
    if (process.env.CI === 'true' && !existsSync(file)) assert.fail(`golden fixture ${file} is missing`);
    mkdirSync(GOLDEN_DIR, { recursive: true });
    writeFileSync(file, text);
    return;
  }
  assert.deepEqual(lines, readFileSync(file, 'utf8').trimEnd().split('\n'), `${name} changed (UPDATE_GOLDEN=1 rewrites it if the change is deliberate)`);
}

async function metricsText(lab: Lab): Promise<string> {
  const script = `fetch('http://127.0.0.1:${HEALTHZ_PORT}/metrics').then(async r=>process.stdout.write(await r.text()))`;
  return lab.nodes[0]!.ns.exec(process.execPath, ['-e', script]);
}

for (const variant of [
  { name: 'udp', backend: 'udp', nodeArgs: [] as string[] },
  { name: 'vxlan-userspace', backend: 'vxlan', nodeArgs: ['-vxlan-userspace'] },
  { name: 'wireguard', backend: 'wireguard', nodeArgs: [] as string[] },
]) {
  describe(`golden status and metrics shape: ${variant.name}`, suiteNeeds(rootAndNetns()), () => {
    let lab: Lab;
    useLab(
      { nodes: 2, backend: variant.backend, ipv6: true, daemonArgs: [`-healthz-port=${HEALTHZ_PORT}`, ...variant.nodeArgs] },
      (l) => (lab = l),
    );

    test('flannelctl status --json keeps its shape', async (t) => {
      if (!need(t, rootAndNetns())) return;
      const s = await fetchStatus(lab.statusSocket(lab.nodes[0]!));
      compareGolden(`status-${variant.name}.txt`, shapeLines(s));
    });

    test('/metrics keeps its names, types and labels', async (t) => {
      if (!need(t, rootAndNetns())) return;
      compareGolden(`metrics-${variant.name}.txt`, metricShape(await metricsText(lab)));
    });
  });
}
