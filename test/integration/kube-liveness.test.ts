// Issue 29, Kubernetes half: the node watch has its own request, abort handle and deadlines. A fake API
// server that accepts watches and never answers, one that sends headers and then nothing, and one whose
// stream stops without closing: each is detected and the watch replaced within the liveness bound,
// events resume (a node added during the fault arrives), the leases already known stay (the node keeps
// forwarding), and the connections open on the server stay bounded (aborted requests leave nothing
// behind). The bound here is 6 s (default 15 s): headers within 2 s, something within 4 s.
import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatCIDR } from '../../src/ip/index.js';
import { setLogSink } from '../../src/log.js';
import { createKubeManager, type KubeManager } from '../../src/subnet/kube/kube-manager.js';
import type { LeaseEvent, LeaseWatch } from '../../src/subnet/types.js';
import { sleep } from '../../src/util/sleep.js';
import { FakeApiServer, writeKubeconfig } from '../helpers/fake-apiserver.js';

const P = 'flannel.alpha.coreos.com/';
const LIVENESS_MS = 6000;
const SLACK_MS = 4000;
const BOUND_MS = LIVENESS_MS + SLACK_MS;
/** At most: the watch being replaced, its replacement, and a list or a request of the client library. */
const MAX_CONNECTIONS = 3;

const annotated = (ip: string): Record<string, string> => ({
  [`${P}kube-subnet-manager`]: 'true',
  [`${P}backend-type`]: 'vxlan',
  [`${P}backend-data`]: '{"VNI":1,"VtepMAC":"2a:6b:41:86:81:09"}',
  [`${P}public-ip`]: ip,
});

describe('kube node watch liveness (fake API server)', () => {
  let server: FakeApiServer;
  let dir: string;
  let m: KubeManager | undefined;
  let w: LeaseWatch | undefined;
  let events: LeaseEvent[];
  let logs: string[];
  let restoreLog: (l: string) => void;
  let maxConnections = 0;
  let sampler: NodeJS.Timeout | undefined;

  beforeEach(async () => {
    server = new FakeApiServer();
    await server.start();
    dir = mkdtempSync(join(tmpdir(), 'flannelts-kube-live-'));
    writeFileSync(join(dir, 'net-conf.json'), '{"Network":"198.19.0.0/16","SubnetLen":24,"Backend":{"Type":"vxlan"}}');
    server.addNode({ name: 'n1', podCIDR: '198.19.1.0/24' });
    server.addNode({ name: 'n2', podCIDR: '198.19.2.0/24', annotations: annotated('198.18.0.12') });
    events = [];
    logs = [];
    restoreLog = setLogSink((l) => logs.push(l));
    maxConnections = 0;
    sampler = setInterval(() => (maxConnections = Math.max(maxConnections, server.connections())), 20);
  });
  afterEach(async () => {
    if (sampler) clearInterval(sampler);
    await w?.close();
    await m?.close();
    w = undefined;
    m = undefined;
    setLogSink(restoreLog);
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function startWatch(): Promise<void> {
    m = await createKubeManager({
      apiUrl: '',
      kubeconfigFile: writeKubeconfig(server.url, dir),
      annotationPrefix: 'flannel.alpha.coreos.com',
      netConfPath: join(dir, 'net-conf.json'),
      setNodeNetworkUnavailable: false,
      env: { NODE_NAME: 'n1' },
      retryInitialMs: 100,
      retryMaxMs: 1000,
      livenessMs: LIVENESS_MS,
    });
    w = await m.watchLeases((evs) => {
      events.push(...evs);
    });
    assert.deepEqual(w.snapshot.map((l) => formatCIDR(l.subnet!)), ['198.19.2.0/24']);
  }

  const learned = (third: number): boolean => events.some((e) => e.type === 'added' && formatCIDR(e.lease.subnet!) === `198.19.${third}.0/24`);
  async function timeToLearn(third: number, limitMs: number): Promise<number> {
    const t0 = Date.now();
    while (!learned(third)) {
      if (Date.now() - t0 > limitMs) throw new Error(`198.19.${third}.0/24 not learned within ${limitMs} ms; log:\n${logs.slice(-10).join('\n')}`);
      await sleep(20);
    }
    return Date.now() - t0;
  }
  const watchRequests = (): number => server.requests.filter((r) => r.query.get('watch') === 'true').length;

  /** The checks every fault ends with: nothing removed, connections bounded, the watch confirmed again. */
  async function afterFault(reason: string): Promise<void> {
    assert.deepEqual(events.filter((e) => e.type === 'removed'), [], 'no lease was dropped: forwarding to known peers went on');
    assert.ok(maxConnections <= MAX_CONNECTIONS, `open connections on the server peaked at ${maxConnections}`);
    assert.ok(m!.watchStatus()!.replacements[reason]! >= 1, JSON.stringify(m!.watchStatus()));
    server.addNode({ name: 'n9', podCIDR: '198.19.9.0/24', annotations: annotated('198.18.0.19') });
    await timeToLearn(9, 5000);
    assert.equal(m!.watchStatus()!.confirmed, true);
  }

  for (const c of [
    { fault: 'no-answer', reason: 'no-headers', third: 3, what: 'accepts watches and never answers: each watch is aborted at the confirmation deadline' },
    { fault: 'headers-only', reason: 'idle', third: 4, what: 'sends headers and then nothing: replaced at the idle deadline' },
  ] as const) {
    test(`an API server that ${c.what}; events resume when it answers`, { timeout: 60_000 }, async () => {
      server.watchFault = c.fault;
      await startWatch();
      server.addNode({ name: `n${c.third}`, podCIDR: `198.19.${c.third}.0/24`, annotations: annotated(`198.18.0.${10 + c.third}`) });
      await sleep(2 * LIVENESS_MS);
      assert.equal(learned(c.third), false);
      assert.ok(watchRequests() >= 2, `watches tried: ${watchRequests()}`);
      server.watchFault = 'none';
      await timeToLearn(c.third, BOUND_MS);
      await afterFault(c.reason);
    });
  }

  test('a stream that stops sending without closing: replaced within the bound; the missed event is replayed', { timeout: 60_000 }, async () => {
    await startWatch();
    while (server.openWatches() < 1) await sleep(20);
    server.muteWatches();
    server.addNode({ name: 'n5', podCIDR: '198.19.5.0/24', annotations: annotated('198.18.0.15') });
    await timeToLearn(5, BOUND_MS);
    // Replayed by the new watch from the last resourceVersion, not found by a re-list.
    assert.equal(m!.watchStatus()!.relists, 1);
    await afterFault('idle');
  });

  test('bookmarks (asked for, with timeoutSeconds) keep a quiet watch from being replaced', { timeout: 60_000 }, async () => {
    server.bookmarkMs = 1000;
    await startWatch();
    await sleep(2 * LIVENESS_MS);
    const st = m!.watchStatus()!;
    assert.equal(st.replacements.idle, 0, JSON.stringify(st));
    assert.equal(watchRequests(), 1);
    const q = server.requests.find((r) => r.query.get('watch') === 'true')!.query;
    assert.equal(q.get('allowWatchBookmarks'), 'true');
    const timeout = Number(q.get('timeoutSeconds'));
    assert.ok(timeout >= 300 && timeout <= 600, `timeoutSeconds=${timeout}`);
    assert.notEqual(st.lastEvent, 'never');
    assert.equal(st.confirmed, true);
  });
});
