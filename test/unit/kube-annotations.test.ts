// The kube annotation codec against flannel's formats (compat §5, §11) and the lease tracker's filters.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mustParseIP, parseCIDR } from '../../src/ip/index.js';
import { setLogSink } from '../../src/log.js';
import {
  annotationNames,
  KubeConfigError,
  networkUnavailablePatch,
  NodeLeaseError,
  nodePodCIDRs,
  nodeToLease,
  ownNodeAnnotations,
  type NodeLike,
} from '../../src/subnet/kube/annotations.js';
import { NodeLeaseTracker } from '../../src/subnet/kube/kube-manager.js';
import type { LeaseAttrs } from '../../src/subnet/types.js';

const names = annotationNames();
const P = 'flannel.alpha.coreos.com/';
const vxlanAttrs: LeaseAttrs = { publicIP: mustParseIP('198.18.0.11'), backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: '2a:6b:41:86:81:04' } };
const v4 = { enableIPv4: true, enableIPv6: false };
const far = new Date(Date.now() + 3600_000);

function node(name: string, ann: Record<string, string>, podCIDR = '198.19.2.0/24', rv = '1'): NodeLike {
  return { metadata: { name, annotations: ann, resourceVersion: rv }, spec: { podCIDR } };
}

test('annotation prefix: default, flannel\'s "/" and "-" rules, invalid prefixes are clear errors', () => {
  assert.equal(names.backendData, `${P}backend-data`);
  assert.equal(names.kubeSubnetManager, `${P}kube-subnet-manager`);
  assert.equal(names.publicIPOverwrite, `${P}public-ip-overwrite`);
  assert.equal(names.nodePublicIPv6, `${P}node-public-ipv6`);
  assert.equal(annotationNames('example.com/').backendType, 'example.com/backend-type');
  assert.equal(annotationNames('example.com/flannel').backendType, 'example.com/flannel-backend-type');
  assert.equal(annotationNames('example.com/flannel-').publicIP, 'example.com/flannel-public-ip');
  assert.throws(() => annotationNames('a.com/b/c'), (e: unknown) => e instanceof KubeConfigError && /at most a single "\/"/.test(e.message));
  assert.throws(() => annotationNames('nodots'), /invalid -kube-annotation-prefix "nodots": it must be a DNS name/);
  assert.throws(() => annotationNames('Upper.Case.com'), KubeConfigError);
  assert.throws(() => annotationNames('ex ample.com'), KubeConfigError);
});

test('our node, vxlan: exactly the annotations stock flanneld v0.20.2 patches (§11), key by key', () => {
  const u = ownNodeAnnotations({}, vxlanAttrs, names);
  assert.deepEqual(u.changes, {
    [`${P}backend-type`]: 'vxlan',
    [`${P}backend-data`]: '{"VNI":1,"VtepMAC":"2a:6b:41:86:81:04"}',
    [`${P}public-ip`]: '198.18.0.11',
    [`${P}kube-subnet-manager`]: 'true',
  });
  assert.deepEqual(Object.keys(u.changes).sort(), [`${P}backend-data`, `${P}backend-type`, `${P}kube-subnet-manager`, `${P}public-ip`]);
  // Already annotated: nothing to patch (flannel skips the PATCH).
  assert.deepEqual(ownNodeAnnotations(u.changes, vxlanAttrs, names).changes, {});
  // Only the changed key is sent when one value moved (a two-way merge patch).
  const moved = ownNodeAnnotations({ ...u.changes, [`${P}public-ip`]: '198.18.0.99' }, vxlanAttrs, names);
  assert.deepEqual(moved.changes, { [`${P}public-ip`]: '198.18.0.11' });
});

test('our node, udp: backend-data is "null" (Go marshals a nil RawMessage); v6 keys only with an IPv6 address', () => {
  const u = ownNodeAnnotations({}, { publicIP: mustParseIP('198.18.0.12'), backendType: 'udp' }, names);
  assert.deepEqual(u.changes, {
    [`${P}backend-type`]: 'udp',
    [`${P}backend-data`]: 'null',
    [`${P}public-ip`]: '198.18.0.12',
    [`${P}kube-subnet-manager`]: 'true',
  });
  // Our udp is dual-stack (flannel's is IPv4-only), so its peers need public-ipv6.
  const d = ownNodeAnnotations({}, { publicIP: mustParseIP('198.18.0.12'), publicIPv6: mustParseIP('2001:db8::c'), backendType: 'udp' }, names);
  assert.equal(d.changes[`${P}public-ipv6`], '2001:db8::c');
  assert.equal(d.changes[`${P}backend-v6-data`], 'null');
});

test('our node, vxlan dual-stack: backend-v6-data and public-ipv6 too', () => {
  const attrs: LeaseAttrs = { ...vxlanAttrs, publicIPv6: mustParseIP('2001:db8::b'), backendV6Data: { VNI: 1, VtepMAC: '2a:6b:41:86:81:05' } };
  const u = ownNodeAnnotations({}, attrs, names);
  assert.equal(u.changes[`${P}backend-v6-data`], '{"VNI":1,"VtepMAC":"2a:6b:41:86:81:05"}');
  assert.equal(u.changes[`${P}public-ipv6`], '2001:db8::b');
});

test('public-ip-overwrite / public-ipv6-overwrite replace the advertised address and are never written', () => {
  const u = ownNodeAnnotations({ [`${P}public-ip-overwrite`]: '198.18.5.5' }, vxlanAttrs, names);
  assert.equal(u.changes[`${P}public-ip`], '198.18.5.5');
  assert.ok(!(`${P}public-ip-overwrite` in u.changes));
  assert.match(u.notes[0] ?? '', /Overriding public ip with '198\.18\.5\.5' from node annotation 'flannel\.alpha\.coreos\.com\/public-ip-overwrite'/);
  // Once applied, a restart changes nothing except what flannel's comparison re-asserts (nothing new).
  const again = ownNodeAnnotations({ ...u.changes, [`${P}public-ip-overwrite`]: '198.18.5.5' }, vxlanAttrs, names);
  assert.deepEqual(again.changes, {});
  const attrs6: LeaseAttrs = { ...vxlanAttrs, publicIPv6: mustParseIP('2001:db8::b'), backendV6Data: { VNI: 1, VtepMAC: '2a:6b:41:86:81:05' } };
  const u6 = ownNodeAnnotations({ [`${P}public-ipv6-overwrite`]: '2001:db8::99' }, attrs6, names);
  assert.equal(u6.changes[`${P}public-ipv6`], '2001:db8::99');
});

test('NetworkUnavailable condition patch: flannel\'s body, Go field order, RFC 3339 seconds', () => {
  assert.equal(
    networkUnavailablePatch(new Date('2026-11-25T01:02:03.456Z')),
    '{"status":{"conditions":[{"type":"NetworkUnavailable","status":"False","lastHeartbeatTime":"2026-11-25T01:02:03Z","lastTransitionTime":"2026-11-25T01:02:03Z","reason":"FlannelIsUp","message":"Flannel is running on this node"}]}}',
  );
});

test('pod CIDRs: podCIDR, dual-stack podCIDRs, host bits cleared like Go, malformed and >2 are errors naming node and field', () => {
  assert.equal(nodePodCIDRs({ metadata: { name: 'n1' }, spec: {} }), undefined);
  const d = nodePodCIDRs({ metadata: { name: 'n1' }, spec: { podCIDR: '198.19.1.0/24', podCIDRs: ['198.19.1.0/24', '2001:db8:100:1::/64'] } });
  assert.deepEqual(d, { v4: parseCIDR('198.19.1.0/24'), v6: parseCIDR('2001:db8:100:1::/64') });
  assert.deepEqual(nodePodCIDRs({ metadata: { name: 'n1' }, spec: { podCIDR: '198.19.1.7/24' } })?.v4, parseCIDR('198.19.1.0/24'));
  assert.throws(() => nodePodCIDRs({ metadata: { name: 'n9' }, spec: { podCIDR: 'bogus' } }), /node "n9": spec.podCIDR: "bogus" is not a CIDR/);
  assert.throws(() => nodePodCIDRs({ metadata: { name: 'n9' }, spec: { podCIDRs: ['198.19.1.0/24', '198.19.2.0/24', '198.19.3.0/24'] } }), /node "n9": spec.podCIDRs: .*dualstack/);
});

test('a peer node becomes flannel\'s lease; bad annotations are NodeLeaseErrors naming node and annotation', () => {
  const good = node('n2', { [`${P}kube-subnet-manager`]: 'true', [`${P}backend-type`]: 'vxlan', [`${P}backend-data`]: '{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:ff"}', [`${P}public-ip`]: '198.18.0.12' });
  const l = nodeToLease(good, names, v4, far);
  assert.deepEqual(l.subnet, parseCIDR('198.19.2.0/24'));
  assert.deepEqual(l.attrs, { backendType: 'vxlan', publicIP: mustParseIP('198.18.0.12'), backendData: { VNI: 1, VtepMAC: 'aa:bb:cc:dd:ee:ff' } });
  const bad = (ann: Record<string, string>, re: RegExp): void => {
    assert.throws(() => nodeToLease(node('n2', { ...good.metadata!.annotations!, ...ann }), names, v4, far), (e: unknown) => e instanceof NodeLeaseError && re.test(e.message));
  };
  bad({ [`${P}public-ip`]: 'not-an-ip' }, /^node "n2": annotation flannel\.alpha\.coreos\.com\/public-ip: "not-an-ip" is not an IPv4 address$/);
  bad({ [`${P}public-ip`]: '2001:db8::1' }, /public-ip: "2001:db8::1" is not an IPv4 address/);
  bad({ [`${P}backend-data`]: '{"VNI":' }, /node "n2": annotation flannel\.alpha\.coreos\.com\/backend-data: "\{\\"VNI\\":" is not JSON/);
  bad({ [`${P}backend-type`]: '' }, /backend-type: missing/);
  assert.throws(() => nodeToLease(node('n3', good.metadata!.annotations!, ''), names, v4, far), /node "n3": spec.podCIDR: pod cidr not assigned/);
  assert.throws(() => nodeToLease(good, names, { enableIPv4: true, enableIPv6: true }, far), /public-ipv6: missing/);
});

test('tracker: only kube-subnet-manager=true nodes, irrelevant updates ignored, malformed skipped (logged once) until fixed, deletes and subnet moves', () => {
  const lines: string[] = [];
  const prev = setLogSink((l) => lines.push(l));
  try {
    let t = 0;
    const tr = new NodeLeaseTracker(names, v4, () => t);
    const ann = { [`${P}kube-subnet-manager`]: 'true', [`${P}backend-type`]: 'udp', [`${P}backend-data`]: 'null', [`${P}public-ip`]: '198.18.0.12' };
    assert.deepEqual(tr.apply([{ type: 'upsert', node: node('plain', {}) }]), [], 'a node without flannel is not a lease');
    const ev1 = tr.apply([{ type: 'upsert', node: node('n2', ann) }]);
    assert.equal(ev1.length, 1);
    assert.equal(ev1[0]?.type, 'added');
    // A heartbeat-like update (new resourceVersion, another annotation): ignored.
    assert.deepEqual(tr.apply([{ type: 'upsert', node: node('n2', { ...ann, 'other/x': 'y' }, '198.19.2.0/24', '2') }]), []);
    // Malformed public-ip: skipped, previous lease kept, logged once for repeats.
    const broken = { ...ann, [`${P}public-ip`]: 'garbage' };
    assert.deepEqual(tr.apply([{ type: 'upsert', node: node('n2', broken, '198.19.2.0/24', '3') }]), []);
    assert.deepEqual(tr.apply([{ type: 'upsert', node: node('n2', broken, '198.19.2.0/24', '4') }]), []);
    assert.equal(lines.filter((l) => /Skipping node "n2".*public-ip: "garbage".*keeping its previous lease/.test(l)).length, 1);
    assert.equal(tr.leases().length, 1);
    // Fixed with a new address: an added event carrying it.
    const fixed = tr.apply([{ type: 'upsert', node: node('n2', { ...ann, [`${P}public-ip`]: '198.18.0.22' }, '198.19.2.0/24', '5') }]);
    assert.equal(fixed.length, 1);
    assert.equal(fixed[0]?.lease.attrs.publicIP?.value, mustParseIP('198.18.0.22').value);
    // A new node that is malformed from the start becomes a lease once fixed.
    assert.deepEqual(tr.apply([{ type: 'upsert', node: node('n3', { ...ann, [`${P}backend-type`]: '' }, '198.19.3.0/24') }]), []);
    assert.equal(tr.apply([{ type: 'upsert', node: node('n3', ann, '198.19.3.0/24', '2') }])[0]?.type, 'added');
    // Subnet moved: the old lease is removed, then the new one added.
    const moved = tr.apply([{ type: 'upsert', node: node('n3', ann, '198.19.33.0/24', '3') }]);
    assert.deepEqual(moved.map((e) => e.type), ['removed', 'added']);
    // Unmanaged now, and deleted: removed.
    assert.deepEqual(tr.apply([{ type: 'upsert', node: node('n3', {}, '198.19.33.0/24', '4') }]).map((e) => e.type), ['removed']);
    assert.deepEqual(tr.apply([{ type: 'delete', node: node('n2', ann) }]).map((e) => e.type), ['removed']);
    assert.deepEqual(tr.leases(), []);
    t += 61_000;
  } finally {
    setLogSink(prev);
  }
});
