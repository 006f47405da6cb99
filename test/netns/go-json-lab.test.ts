// A lab whose net-conf Backend options use lower-case and duplicate keys, read as stock flanneld reads
// them (Go's encoding/json: any case, the last member wins). vxlan with kernel and userspace VTEPs mixed
// (node 3 runs -vxlan-userspace): every node uses VNI 3 and port 4789, and all pods reach each other.
// udp: "port" is the port (before, only "Port" was read and such a node split from stock peers).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Lab } from '../../src/lab/lab.js';
import { binary, need, rootAndNetns, suiteNeeds } from '../helpers/prereq.js';
import { assertAllPairs } from '../helpers/lab-probe.js';
import { useLab } from '../helpers/lab.js';

const reqs = [rootAndNetns(), binary('ss')];

describe('mixed vxlan lab with Go-style Backend keys: {"type":"vxlan","VNI":2,"vni":3,"Port":8472,"port":4789}', suiteNeeds(...reqs), () => {
  let lab: Lab;
  useLab(
    {
      nodes: 3,
      backend: 'vxlan',
      ipv6: false,
      netConfText: '{"network":"198.19.0.0/16","SubnetLen":24,"backend":{"type":"vxlan","VNI":2,"vni":3,"Port":8472,"port":4789}}',
      nodeArgs: (i) => (i === 2 ? ['-vxlan-userspace'] : []),
    },
    (l) => (lab = l),
  );

  test('kernel nodes made flannel.3 with dstport 4789, the userspace node listens on 4789, pods reach each other', async (t) => {
    if (!need(t, ...reqs)) return;
    for (const n of lab.nodes.slice(0, 2)) {
      const link = n.ns.ip('-d', 'link', 'show', 'flannel.3');
      assert.match(link, /vxlan id 3 /, n.name);
      assert.match(link, /dstport 4789 /, n.name);
      assert.throws(() => n.ns.ip('link', 'show', 'flannel.2'));
    }
    assert.match(lab.nodes[2]!.ns.exec('ss', ['-uln']), /:4789\b/);
    await assertAllPairs(lab, 6);
  });
});

describe('udp lab with {"Type":"udp","Port":8285,"port":8290}', suiteNeeds(...reqs), () => {
  let lab: Lab;
  useLab({ nodes: 2, backend: 'udp', ipv6: false, netConfText: '{"Network":"198.19.0.0/16","Backend":{"Type":"udp","Port":8285,"port":8290}}' }, (l) => (lab = l));

  test('every node uses port 8290, and pods reach each other', async (t) => {
    if (!need(t, ...reqs)) return;
    for (const n of lab.nodes) {
      const ss = n.ns.exec('ss', ['-uln']);
      assert.match(ss, new RegExp(`${n.underlayIP.replace(/\./g, '\\.')}:8290\\b`), n.name);
      assert.doesNotMatch(ss, /:8285\b/, n.name);
    }
    await assertAllPairs(lab, 2);
  });
});
