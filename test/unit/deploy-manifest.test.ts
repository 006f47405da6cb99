// deploy/kube-flannel.yml against flannel v0.28.9's own manifest (kept as a fixture): the same objects
// with our image in flannel's two image slots, args our flag parser takes, probe paths our healthz
// server answers; and the /dev/net/tun variant, privileged and otherwise the same.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { parseFlags, toOptions } from '../../src/config/flags.js';
import { parseNetworkConfig } from '../../src/config/netconf.js';
import { formatCIDR } from '../../src/ip/index.js';
import { startHealthz } from '../../src/http.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
const OUR_IMAGE = `localhost/flannelts:v${version}`;
const FLANNEL_IMAGE = 'ghcr.io/flannel-io/flannel:v0.28.9';

interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: Array<{ name: string; value?: string; valueFrom?: unknown }>;
  ports?: Array<{ name: string; containerPort: number }>;
  livenessProbe?: { httpGet: { path: string; port: string | number } };
  readinessProbe?: { httpGet: { path: string; port: string | number } };
  securityContext?: Record<string, unknown>;
}
interface K8sObject {
  kind: string;
  metadata: { name: string; namespace?: string };
  data?: Record<string, string>;
  spec?: { template: { spec: { initContainers: Container[]; containers: Container[] } } };
}

function load(path: string): K8sObject[] {
  return parseAllDocuments(readFileSync(join(root, path), 'utf8')).map((d) => {
    assert.deepEqual(d.errors, [], `${path}: YAML errors`);
    return d.toJS() as K8sObject;
  });
}

const flannel = load('test/fixtures/flannel/kube-flannel-v0.28.9.yml');
const ours = load('deploy/kube-flannel.yml');
const tun = load('deploy/kube-flannel-tun.yml');
const podSpec = (objs: K8sObject[]) => objs.find((o) => o.kind === 'DaemonSet')!.spec!.template.spec;
const container = (objs: K8sObject[], name: string): Container => {
  const s = podSpec(objs);
  const c = [...s.initContainers, ...s.containers].find((x) => x.name === name);
  assert.ok(c, `container ${name}`);
  return c;
};

test('the same objects as flannel v0.28.9, differing only in the image of install-cni and kube-flannel', () => {
  const id = (o: K8sObject) => `${o.kind} ${o.metadata.namespace ?? '-'}/${o.metadata.name}`;
  assert.deepEqual(ours.map(id), flannel.map(id));
  assert.deepEqual(ours.map(id), ['Namespace -/kube-flannel', 'ClusterRole -/flannel', 'ClusterRoleBinding -/flannel', 'ServiceAccount kube-flannel/flannel', 'ConfigMap kube-flannel/kube-flannel-cfg', 'DaemonSet kube-flannel/kube-flannel-ds']);
  const expected = structuredClone(flannel);
  for (const name of ['install-cni', 'kube-flannel']) {
    assert.equal(container(expected, name).image, FLANNEL_IMAGE);
    container(expected, name).image = OUR_IMAGE;
  }
  assert.deepEqual(ours, expected, 'RBAC, ConfigMap, probes, mounts, env, init containers and securityContext as flannel');
});

test('flannel\'s CNI plugin image stays; install-cni runs our /opt/bin/install-conf with its two arguments', () => {
  assert.match(container(ours, 'install-cni-plugin').image, /^ghcr\.io\/flannel-io\/flannel-cni-plugin:/);
  const ic = container(ours, 'install-cni');
  assert.equal(ic.image, OUR_IMAGE);
  assert.deepEqual(ic.command, ['/opt/bin/install-conf']);
  assert.equal(ic.args?.length, 2, 'install-conf takes exactly two arguments');
});

test('the flanneld container: our image, /opt/bin/flanneld, args and env our flag parser accepts', () => {
  const c = container(ours, 'kube-flannel');
  assert.equal(c.image, OUR_IMAGE);
  assert.deepEqual(c.command, ['/opt/bin/flanneld']);
  // The downward API fills valueFrom at run time; any value stands in for it here.
  const env = Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value ?? `from-${e.name.toLowerCase()}`]));
  const opts = toOptions(parseFlags(c.args ?? [], env));
  assert.equal(opts.kubeSubnetMgr, true);
  assert.equal(opts.ipMasq, true);
  const port = c.ports?.find((p) => p.name === 'healthz')?.containerPort;
  assert.equal(opts.healthzPort, port, 'the probes\' named port is the one --healthz-port opens');
  assert.equal(opts.healthzIP, '0.0.0.0', 'the kubelet probes the node address (hostNetwork)');
  assert.deepEqual(c.securityContext, { privileged: false, capabilities: { add: ['NET_ADMIN', 'NET_RAW'] } });
});

test('the ConfigMap\'s net-conf.json is flannel\'s default and our parser reads it', () => {
  const cm = ours.find((o) => o.kind === 'ConfigMap')!;
  const conf = parseNetworkConfig(cm.data!['net-conf.json']!);
  assert.equal(formatCIDR(conf.network!), '10.244.0.0/16', 'flannel\'s default Network, as users have it in their clusters');
  assert.equal(conf.backend.type, 'vxlan');
  assert.equal((JSON.parse(cm.data!['cni-conf.json']!) as { plugins: Array<{ type: string }> }).plugins[0]!.type, 'flannel');
});

test('the probe paths are served by our healthz server: liveness 200, readiness 503 until ready then 200', async () => {
  const c = container(ours, 'kube-flannel');
  const live = c.livenessProbe!.httpGet;
  const ready = c.readinessProbe!.httpGet;
  assert.equal(live.port, 'healthz');
  assert.equal(ready.port, 'healthz');
  let isReady = false;
  const server = await startHealthz('127.0.0.1', 0, { isReady: () => isReady });
  try {
    const { port } = server.address() as AddressInfo;
    const get = async (path: string) => {
      const r = await fetch(`http://127.0.0.1:${port}${path}`);
      return `${r.status} ${await r.text()}`;
    };
    assert.equal(await get(live.path), '200 flanneld is running');
    assert.equal(await get(ready.path), '503 flanneld is not ready yet');
    isReady = true;
    assert.equal(await get(ready.path), '200 flanneld is ready');
    assert.equal(await get(live.path), '200 flanneld is running');
  } finally {
    server.close();
  }
});

test('the tun variant is kube-flannel.yml with only the flanneld container privileged', () => {
  const expected = structuredClone(ours);
  container(expected, 'kube-flannel').securityContext = { privileged: true };
  assert.deepEqual(tun, expected);
  for (const name of ['install-cni-plugin', 'install-cni']) assert.equal(container(tun, name).securityContext, undefined);
});
