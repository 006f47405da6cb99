// The kube subnet manager end to end against an in-process API server on 127.0.0.1, through the real
// @kubernetes/client-node (configured from a kubeconfig file or -kube-api-url). No root needed.
import { after, afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatCIDR, mustParseIP } from '../../src/ip/index.js';
import { setLogSink } from '../../src/log.js';
import { KubeConfigError } from '../../src/subnet/kube/annotations.js';
import { loadKubeConfig } from '../../src/subnet/kube/client.js';
import { createKubeManager, type KubeManager } from '../../src/subnet/kube/kube-manager.js';
import type { LeaseAttrs, LeaseEvent, LeaseWatch } from '../../src/subnet/types.js';
import { FakeApiServer, writeKubeconfig } from '../helpers/fake-apiserver.js';
import { sleep } from '../../src/util/sleep.js';

const P = 'flannel.alpha.coreos.com/';
const NETCONF = '{"Network":"198.19.0.0/16","SubnetLen":24,"Backend":{"Type":"vxlan"}}';
const vxlan = (ip: string, mac: string): LeaseAttrs => ({ publicIP: mustParseIP(ip), backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: mac } });
const flanneld = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli', 'flanneld.js');

async function waitFor(what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Collected lease events of one watch, as "added 198.19.2.0/24" strings. */
function collector(): { events: string[]; raw: LeaseEvent[]; on: (e: LeaseEvent[]) => void } {
  const c = { events: [] as string[], raw: [] as LeaseEvent[], on: (evs: LeaseEvent[]) => {
    for (const e of evs) {
      c.raw.push(e);
      c.events.push(`${e.type} ${e.lease.subnet ? formatCIDR(e.lease.subnet) : '-'}`);
    }
  } };
  return c;
}

describe('kube subnet manager against a fake API server', () => {
  let server: FakeApiServer;
  let dir: string;
  let kubeconfig: string;
  let netConfPath: string;
  const managers: KubeManager[] = [];
  const watches: LeaseWatch[] = [];
  let logs: string[];
  let restoreLog: (l: string) => void;

  const manager = async (node: string, extra: Partial<Parameters<typeof createKubeManager>[0]> = {}): Promise<KubeManager> => {
    const m = await createKubeManager({
      apiUrl: '',
      kubeconfigFile: kubeconfig,
      annotationPrefix: 'flannel.alpha.coreos.com',
      netConfPath,
      setNodeNetworkUnavailable: true,
      env: { NODE_NAME: node },
      retryInitialMs: 40,
      retryMaxMs: 200,
      podCidrRetryMs: 50,
      ...extra,
    });
    managers.push(m);
    return m;
  };
  const watch = async (m: KubeManager, on: (e: LeaseEvent[]) => void): Promise<LeaseWatch> => {
    const w = await m.watchLeases(on);
    watches.push(w);
    return w;
  };

  beforeEach(async () => {
    server = new FakeApiServer();
    await server.start('127.0.0.1', 0);
    dir = mkdtempSync(join(tmpdir(), 'flannelts-kube-'));
    kubeconfig = writeKubeconfig(server.url, dir);
    netConfPath = join(dir, 'net-conf.json');
    writeFileSync(netConfPath, NETCONF);
    logs = [];
    restoreLog = setLogSink((l) => logs.push(l));
  });
  afterEach(async () => {
    setLogSink(restoreLog);
    for (const w of watches.splice(0)) await w.close();
    for (const m of managers.splice(0)) await m.close();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  after(() => {});

  test('writes exactly flannel\'s annotations with a strategic merge patch on the status subresource; none when unchanged', async () => {
    server.addNode({ name: 'n1', podCIDR: '198.19.1.0/24' });
    const m = await manager('n1');
    const lease = await m.acquireLease(vxlan('198.18.0.11', '2a:6b:41:86:81:04'));
    assert.equal(formatCIDR(lease.subnet!), '198.19.1.0/24');
    assert.ok(lease.expiration.getTime() > Date.now() + 23 * 3600_000, 'nominal 24 h expiration');
    const patches = server.requests.filter((r) => r.method === 'PATCH');
    assert.equal(patches.length, 1);
    assert.equal(patches[0]!.path, '/api/v1/nodes/n1/status');
    assert.equal(patches[0]!.contentType, 'application/strategic-merge-patch+json');
    assert.deepEqual(JSON.parse(patches[0]!.body), { metadata: { annotations: {
      [`${P}backend-type`]: 'vxlan',
      [`${P}backend-data`]: '{"VNI":1,"VtepMAC":"2a:6b:41:86:81:04"}',
      [`${P}public-ip`]: '198.18.0.11',
      [`${P}kube-subnet-manager`]: 'true',
    } } });
    // §11, key by key, on the stored node.
    const ann = server.annotations('n1');
    assert.equal(ann[`${P}backend-data`], '{"VNI":1,"VtepMAC":"2a:6b:41:86:81:04"}');
    assert.equal(ann[`${P}backend-type`], 'vxlan');
    assert.equal(ann[`${P}kube-subnet-manager`], 'true');
    assert.equal(ann[`${P}public-ip`], '198.18.0.11');
    assert.deepEqual(Object.keys(ann).filter((k) => k.startsWith(P)).sort(), [`${P}backend-data`, `${P}backend-type`, `${P}kube-subnet-manager`, `${P}public-ip`]);
    // A restart with the same attributes patches nothing.
    await m.acquireLease(vxlan('198.18.0.11', '2a:6b:41:86:81:04'));
    assert.equal(server.requests.filter((r) => r.method === 'PATCH').length, 1);
    // Renew is a no-op on the API (kube leases have no TTL).
    const before = server.requests.length;
    const renewed = await m.renewLease(lease);
    assert.equal(server.requests.length, before);
    assert.ok(renewed.expiration >= lease.expiration);
  });

  test('CompleteLease sets NodeNetworkUnavailable=False exactly like flannel, keeping other conditions', async () => {
    server.addNode({ name: 'n1', podCIDR: '198.19.1.0/24' });
    const m = await manager('n1');
    const lease = await m.acquireLease(vxlan('198.18.0.11', '2a:6b:41:86:81:04'));
    await m.completeLease(lease);
    const p = server.requests.filter((r) => r.method === 'PATCH').at(-1)!;
    assert.equal(p.path, '/api/v1/nodes/n1/status');
    assert.equal(p.contentType, 'application/strategic-merge-patch+json');
    const body = JSON.parse(p.body) as { status: { conditions: Array<Record<string, string>> } };
    assert.equal(body.status.conditions.length, 1);
    const c = body.status.conditions[0]!;
    assert.deepEqual(Object.keys(c), ['type', 'status', 'lastHeartbeatTime', 'lastTransitionTime', 'reason', 'message']);
    assert.deepEqual({ type: c.type, status: c.status, reason: c.reason, message: c.message }, { type: 'NetworkUnavailable', status: 'False', reason: 'FlannelIsUp', message: 'Flannel is running on this node' });
    assert.match(c.lastHeartbeatTime ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    const conds = ((server.node('n1')!.status as { conditions: Array<{ type: string; status: string }> }).conditions);
    assert.deepEqual(conds.map((x) => `${x.type}=${x.status}`), ['Ready=True', 'NetworkUnavailable=False']);
  });

  test('-set-node-network-unavailable=false sends no condition patch', async () => {
    server.addNode({ name: 'n1', podCIDR: '198.19.1.0/24' });
    const m = await manager('n1', { setNodeNetworkUnavailable: false });
    const lease = await m.acquireLease(vxlan('198.18.0.11', '2a:6b:41:86:81:04'));
    const n = server.requests.length;
    await m.completeLease(lease);
    assert.equal(server.requests.length, n);
  });

  test('public-ip-overwrite is advertised instead of our address; node-public-ip is the stored public IP', async () => {
    server.addNode({ name: 'n1', podCIDR: '198.19.1.0/24', annotations: { [`${P}public-ip-overwrite`]: '198.18.7.7', [`${P}node-public-ip`]: '198.18.0.11' } });
    const m = await manager('n1');
    assert.deepEqual(await m.getStoredPublicIP(), { publicIP: '198.18.0.11' });
    await m.acquireLease(vxlan('198.18.0.11', '2a:6b:41:86:81:04'));
    assert.equal(server.annotations('n1')[`${P}public-ip`], '198.18.7.7');
    assert.equal(server.annotations('n1')[`${P}public-ip-overwrite`], '198.18.7.7', 'the operator\'s annotation is left alone');
    assert.ok(logs.some((l) => /Overriding public ip with '198\.18\.7\.7'/.test(l)));
  });

  test('two managers (two nodes) see each other\'s leases; a third node and a deleted node become events', async () => {
    server.addNode({ name: 'n1', podCIDR: '198.19.1.0/24' });
    server.addNode({ name: 'n2', podCIDR: '198.19.2.0/24' });
    server.addNode({ name: 'plain', podCIDR: '198.19.9.0/24' });
    const m1 = await manager('n1');
    const m2 = await manager('n2');
    await m1.acquireLease(vxlan('198.18.0.11', '2a:6b:41:86:81:01'));
    const c1 = collector();
    const w1 = await watch(m1, c1.on);
    assert.deepEqual(w1.snapshot.map((l) => formatCIDR(l.subnet!)), ['198.19.1.0/24'], 'only nodes flannel annotated are leases');
    await m2.acquireLease(vxlan('198.18.0.12', '2a:6b:41:86:81:02'));
    const c2 = collector();
    const w2 = await watch(m2, c2.on);
    assert.deepEqual(w2.snapshot.map((l) => formatCIDR(l.subnet!)).sort(), ['198.19.1.0/24', '198.19.2.0/24']);
    await waitFor('n1 sees n2', () => c1.events.includes('added 198.19.2.0/24'));
    const peer = c1.raw.find((e) => e.lease.subnet && formatCIDR(e.lease.subnet) === '198.19.2.0/24')!.lease;
    assert.deepEqual(peer.attrs, { backendType: 'vxlan', publicIP: mustParseIP('198.18.0.12'), backendData: { VNI: 1, VtepMAC: '2a:6b:41:86:81:02' } });
    // An unrelated update of n2 (a status heartbeat) is no event.
    const seen = c1.events.length;
    server.updateNode('n2', (n) => { (n.status as Record<string, unknown>).heartbeat = 'x'; });
    await sleep(200);
    assert.equal(c1.events.length, seen);
    server.deleteNode('n2');
    await waitFor('removal seen by n1', () => c1.events.includes('removed 198.19.2.0/24'));
  });

  test('podCIDR assigned late: a clear repeated message naming the node and the fix, then the lease', async () => {
    server.addNode({ name: 'n1' });
    const m = await manager('n1');
    const p = m.acquireLease(vxlan('198.18.0.11', '2a:6b:41:86:81:04'));
    await waitFor('two pod cidr messages', () => logs.filter((l) => l.includes('node "n1" pod cidr not assigned')).length >= 2);
    assert.ok(logs.some((l) => /--allocate-node-cidrs/.test(l)));
    server.updateNode('n1', (n) => { (n.spec as Record<string, unknown>).podCIDR = '198.19.4.0/24'; });
    const lease = await p;
    assert.equal(formatCIDR(lease.subnet!), '198.19.4.0/24');
  });

  test('a podCIDR outside the net-conf Network is an error naming node and field', async () => {
    server.addNode({ name: 'n1', podCIDR: '198.18.200.0/24' });
    const m = await manager('n1');
    await assert.rejects(m.acquireLease(vxlan('198.18.0.11', '2a:6b:41:86:81:04')), /node "n1": spec.podCIDR: 198\.18\.200\.0\/24 is not inside the net-conf Network 198\.19\.0\.0\/16/);
  });

  test('API server down at start, then up: acquire and watch retry with backoff and succeed', async () => {
    server.addNode({ name: 'n1', podCIDR: '198.19.1.0/24' });
    const port = server.port;
    await server.stop();
    const m = await manager('n1');
    const p = m.acquireLease(vxlan('198.18.0.11', '2a:6b:41:86:81:04'));
    await waitFor('retry messages', () => logs.filter((l) => /get node "n1" failed .*retrying/.test(l)).length >= 2);
    await server.start('127.0.0.1', port);
    const lease = await p;
    assert.equal(formatCIDR(lease.subnet!), '198.19.1.0/24');
    await server.stop();
    const c = collector();
    const w = m.watchLeases(c.on);
    await waitFor('list retries', () => logs.some((l) => /Failed to list nodes .*retrying/.test(l)));
    await server.start('127.0.0.1', port);
    const handle = await w;
    watches.push(handle);
    assert.equal(handle.snapshot.length, 1);
  });

  test('HTTP 500s from the API server are retried', async () => {
    server.addNode({ name: 'n1', podCIDR: '198.19.1.0/24' });
    server.failNext(500, 2, { method: 'GET', path: /^\/api\/v1\/nodes\/n1$/ });
    server.failNext(503, 1, { method: 'PATCH' });
    const m = await manager('n1');
    const lease = await m.acquireLease(vxlan('198.18.0.11', '2a:6b:41:86:81:04'));
    assert.equal(formatCIDR(lease.subnet!), '198.19.1.0/24');
    assert.equal(server.annotations('n1')[`${P}kube-subnet-manager`], 'true');
    assert.ok(logs.some((l) => /HTTP 500/.test(l)));
    assert.ok(logs.some((l) => /patch annotations of node "n1" failed .*HTTP 503/.test(l)));
  });

  test('a hung API server (connection accepted, no answer): each call times out and is retried', async () => {
    server.addNode({ name: 'n1', podCIDR: '198.19.1.0/24' });
    server.hangNext(2, { method: 'GET', path: /^\/api\/v1\/nodes\/n1$/ });
    const m = await manager('n1', { requestTimeoutMs: 150 });
    const lease = await m.acquireLease(vxlan('198.18.0.11', '2a:6b:41:86:81:04'));
    assert.equal(formatCIDR(lease.subnet!), '198.19.1.0/24');
    assert.equal(logs.filter((l) => /get node "n1" failed .*no answer from the API server within the request timeout/.test(l)).length, 2, logs.join('\n'));
  });

  const annotated = (ip: string): Record<string, string> => ({ [`${P}kube-subnet-manager`]: 'true', [`${P}backend-type`]: 'vxlan', [`${P}backend-data`]: '{"VNI":1,"VtepMAC":"2a:6b:41:86:81:09"}', [`${P}public-ip`]: ip });

  test('watch broken mid-stream (API server restart): changes made meanwhile all arrive after the re-list', async () => {
    server.addNode({ name: 'n2', podCIDR: '198.19.2.0/24', annotations: annotated('198.18.0.12') });
    server.addNode({ name: 'n3', podCIDR: '198.19.3.0/24', annotations: annotated('198.18.0.13') });
    const m = await manager('n1');
    const c = collector();
    const w = await watch(m, c.on);
    assert.equal(w.snapshot.length, 2);
    const port = server.port;
    await server.stop();
    // While the server is down nobody could watch these.
    server.deleteNode('n3');
    server.addNode({ name: 'n4', podCIDR: '198.19.4.0/24', annotations: annotated('198.18.0.14') });
    server.updateNode('n2', (n) => { (n.metadata as { annotations: Record<string, string> }).annotations[`${P}public-ip`] = '198.18.0.22'; });
    await sleep(150);
    await server.start('127.0.0.1', port);
    await waitFor('all three changes', () => ['removed 198.19.3.0/24', 'added 198.19.4.0/24', 'added 198.19.2.0/24'].every((e) => c.events.includes(e)));
    assert.ok(logs.some((l) => /Node watch failed|Failed to list nodes/.test(l)));
    // And the watch is live again afterwards.
    server.addNode({ name: 'n5', podCIDR: '198.19.5.0/24', annotations: annotated('198.18.0.15') });
    await waitFor('n5 after recovery', () => c.events.includes('added 198.19.5.0/24'));
  });

  test('an ERROR event other than 410 in the watch stream: re-list and diff, events made meanwhile arrive', async () => {
    const m = await manager('n1');
    const c = collector();
    await watch(m, c.on);
    await waitFor('watch open', () => server.openWatches() === 1);
    const lists = server.requests.filter((r) => r.path === '/api/v1/nodes' && r.query.get('watch') === null).length;
    server.sendWatchError(500, 'etcdserver: request timed out');
    server.addNode({ name: 'n11', podCIDR: '198.19.11.0/24', annotations: annotated('198.18.0.31') });
    await waitFor('n11', () => c.events.includes('added 198.19.11.0/24'));
    await waitFor('re-listed', () => server.requests.filter((r) => r.path === '/api/v1/nodes' && r.query.get('watch') === null).length > lists);
    assert.ok(logs.some((l) => /Node watch error event \(code 500: etcdserver: request timed out\); listing again/.test(l)));
    assert.deepEqual(c.events.filter((e) => e === 'added 198.19.11.0/24'), ['added 198.19.11.0/24'], 'delivered once, not duplicated by the re-list');
  });

  test('the kubeconfig\'s credentials are sent (bearer token on every request)', async () => {
    server.addNode({ name: 'n1', podCIDR: '198.19.1.0/24' });
    const m = await manager('n1');
    await m.acquireLease(vxlan('198.18.0.11', '2a:6b:41:86:81:04'));
    await watch(m, () => {});
    await waitFor('watch', () => server.requests.some((r) => r.query.get('watch') === 'true'));
    assert.ok(server.requests.length >= 4);
    for (const r of server.requests) assert.equal(r.authorization, 'Bearer test-token', `${r.method} ${r.path}`);
  });

  test('a socket cut mid-stream loses no event', async () => {
    const m = await manager('n1');
    const c = collector();
    await watch(m, c.on);
    await waitFor('watch open', () => server.openWatches() === 1);
    assert.equal(server.breakWatches(), 1);
    server.addNode({ name: 'n6', podCIDR: '198.19.6.0/24', annotations: annotated('198.18.0.16') });
    await waitFor('n6', () => c.events.includes('added 198.19.6.0/24'));
  });

  for (const mode of ['event', 'http'] as const) {
    test(`410 Gone (${mode === 'event' ? 'ERROR event in the stream' : 'HTTP 410'}) on a too-old resourceVersion: re-list and diff`, async () => {
      server.goneMode = mode;
      server.addNode({ name: 'n2', podCIDR: '198.19.2.0/24', annotations: annotated('198.18.0.12') });
      const m = await manager('n1');
      const c = collector();
      await watch(m, c.on);
      await waitFor('watch open', () => server.openWatches() === 1);
      await sleep(1100); // a watch older than 1 s is resumed from its resourceVersion when closed cleanly
      const lists = server.requests.filter((r) => r.path === '/api/v1/nodes' && r.query.get('watch') === null).length;
      server.endWatches();
      server.deleteNode('n2');
      server.addNode({ name: 'n7', podCIDR: '198.19.7.0/24', annotations: annotated('198.18.0.17') });
      server.compact();
      await waitFor('diff after re-list', () => c.events.includes('removed 198.19.2.0/24') && c.events.includes('added 198.19.7.0/24'));
      const listsAfter = server.requests.filter((r) => r.path === '/api/v1/nodes' && r.query.get('watch') === null).length;
      assert.ok(listsAfter > lists, 'listed again');
      assert.ok(server.requests.some((r) => r.query.get('watch') === 'true' && Number(r.query.get('resourceVersion')) < server.resourceVersion - 1), 'resumed from the old version first');
      assert.ok(logs.some((l) => /410 Gone/.test(l)));
    });
  }

  test('the informer-style list asks limit=500&resourceVersion=0 and watches from the list\'s resourceVersion', async () => {
    const m = await manager('n1');
    await watch(m, () => {});
    await waitFor('watch', () => server.requests.some((r) => r.query.get('watch') === 'true'));
    const list = server.requests.find((r) => r.path === '/api/v1/nodes' && r.query.get('watch') === null)!;
    assert.equal(list.query.get('limit'), '500');
    assert.equal(list.query.get('resourceVersion'), '0');
    const w = server.requests.find((r) => r.query.get('watch') === 'true')!;
    assert.equal(w.query.get('resourceVersion'), String(server.resourceVersion));
  });

  test('a full resync re-lists on its period and repairs what a hung watch missed', async () => {
    const m = await manager('n1', { resyncMs: 300 });
    const c = collector();
    await watch(m, c.on);
    await waitFor('watch open', () => server.openWatches() === 1);
    // Simulate a silently hung stream: drop the watcher without closing its socket.
    server.muteWatches();
    server.addNode({ name: 'n8', podCIDR: '198.19.8.0/24', annotations: annotated('198.18.0.18') });
    await waitFor('resync picks up n8', () => c.events.includes('added 198.19.8.0/24'), 5000);
  });

  test('malformed annotations: skipped with a log line naming node and field, accepted once fixed', async () => {
    const m = await manager('n1');
    const c = collector();
    await watch(m, c.on);
    server.addNode({ name: 'bad', podCIDR: '198.19.10.0/24', annotations: { ...annotated('198.18.0.20'), [`${P}public-ip`]: '198.18.0' } });
    await waitFor('log line', () => logs.some((l) => /Skipping node "bad".*annotation flannel\.alpha\.coreos\.com\/public-ip: "198\.18\.0" is not an IPv4 address/.test(l)));
    assert.deepEqual(c.events, []);
    server.updateNode('bad', (n) => { (n.metadata as { annotations: Record<string, string> }).annotations[`${P}public-ip`] = '198.18.0.20'; });
    await waitFor('accepted', () => c.events.includes('added 198.19.10.0/24'));
  });

  test('node name from POD_NAME/POD_NAMESPACE (the pod\'s spec.nodeName); clear errors otherwise', async () => {
    server.addPod('kube-flannel', 'kube-flannel-ds-abcde', 'n1');
    const m = await manager('', { env: { POD_NAME: 'kube-flannel-ds-abcde', POD_NAMESPACE: 'kube-flannel' } });
    assert.equal(m.nodeName, 'n1');
    await assert.rejects(manager('', { env: {} }), /set NODE_NAME, or POD_NAME and POD_NAMESPACE/);
    await assert.rejects(manager('', { env: { POD_NAME: 'nope', POD_NAMESPACE: 'kube-flannel' } }), /error retrieving pod spec for 'kube-flannel\/nope': HTTP 404/);
  });

  test('-kube-api-url alone works (no kubeconfig), and overrides a kubeconfig\'s server', async () => {
    server.addNode({ name: 'n1', podCIDR: '198.19.1.0/24' });
    const m = await manager('n1', { kubeconfigFile: '', apiUrl: server.url });
    assert.equal(formatCIDR((await m.acquireLease(vxlan('198.18.0.11', '2a:6b:41:86:81:04'))).subnet!), '198.19.1.0/24');
    const stale = writeKubeconfig('http://127.0.0.1:1', mkdtempSync(join(dir, 'k-')));
    const m2 = await manager('n1', { kubeconfigFile: stale, apiUrl: server.url });
    assert.equal(formatCIDR((await m2.acquireLease(vxlan('198.18.0.11', '2a:6b:41:86:81:04'))).subnet!), '198.19.1.0/24');
  });

  test('bad kubeconfig, bad URL, bad prefix, no in-cluster environment: clear KubeConfigErrors', async () => {
    const cases: Array<[Partial<Parameters<typeof createKubeManager>[0]>, RegExp]> = [
      [{ kubeconfigFile: join(dir, 'missing') }, /-kubeconfig-file .*missing: no such file/],
      [{ kubeconfigFile: (writeFileSync(join(dir, 'broken'), 'clusters: [\n  - : :'), join(dir, 'broken')) }, /-kubeconfig-file .*broken: cannot load it/],
      [{ kubeconfigFile: (writeFileSync(join(dir, 'noctx'), 'apiVersion: v1\nkind: Config\nclusters: []\n'), join(dir, 'noctx')) }, /noctx: no current-context set/],
      [{ kubeconfigFile: (writeFileSync(join(dir, 'noserver'), 'apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {}\ncontexts: []\ncurrent-context: x\n'), join(dir, 'noserver')) }, /noserver: cannot load it: clusters\[0\]\.cluster\.server is missing/],
      [{ kubeconfigFile: '', apiUrl: 'not a url' }, /-kube-api-url: API server "not a url" is not a URL/],
      [{ annotationPrefix: 'a/b/c' }, /invalid -kube-annotation-prefix/],
      [{ kubeconfigFile: '', apiUrl: '', env: { NODE_NAME: 'n1' } }, /not running in a pod \(KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are unset\)/],
    ];
    for (const [opts, re] of cases) {
      await assert.rejects(manager('n1', opts), (e: unknown) => e instanceof KubeConfigError && re.test(e.message), String(re));
    }
  });

  test('in-cluster config: the service account token and CA under the standard path, https to KUBERNETES_SERVICE_HOST', () => {
    const root = mkdtempSync(join(dir, 'sa-'));
    const sa = join(root, 'var/run/secrets/kubernetes.io/serviceaccount');
    mkdirSync(sa, { recursive: true });
    writeFileSync(join(sa, 'token'), 'tok');
    writeFileSync(join(sa, 'ca.crt'), '');
    const kc = loadKubeConfig({ apiUrl: '', kubeconfigFile: '', env: { KUBERNETES_SERVICE_HOST: '2001:db8::1', KUBERNETES_SERVICE_PORT: '443' }, serviceAccountRoot: root });
    assert.equal(kc.getCurrentCluster()?.server, 'https://[2001:db8::1]:443');
    assert.equal(kc.getCurrentCluster()?.caFile, join(sa, 'ca.crt'));
    assert.throws(() => loadKubeConfig({ apiUrl: '', kubeconfigFile: '', env: { KUBERNETES_SERVICE_HOST: '198.18.0.1', KUBERNETES_SERVICE_PORT: '443' }, serviceAccountRoot: join(dir, 'none') }), /service account token .* is missing/);
  });

  test('flanneld -kube-subnet-mgr with a bad kubeconfig exits 1 with one clear line', () => {
    const r = spawnSync(process.execPath, [flanneld, '-kube-subnet-mgr', `-kubeconfig-file=${join(dir, 'missing')}`], { encoding: 'utf8', env: { PATH: process.env.PATH, NODE_NAME: 'n1' }, timeout: 15_000 });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /^E\d{4} .*Failed to create SubnetManager: -kubeconfig-file .*missing: no such file/m);
  });
});
