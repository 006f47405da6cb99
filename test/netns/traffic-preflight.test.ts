// What a node checks before it touches anything, on a real namespace: the br_netfilter check of
// iptables mode, both ways (the sysctls hidden by an empty tmpfs in the daemon's mount namespace, as on
// a host without the module), its opt-out, nftables mode skipping it; and nftables mode without `nft`
// stopping with exit 1 before a lease, a device or a rule exists.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { BRIDGE_NF_CALL_IPTABLES } from '../../src/firewall/br-netfilter.js';
import { NetnsSet } from '../../src/lab/netns.js';
import { binary, need, rootAndNetns, suiteNeeds, type Prereq } from '../helpers/prereq.js';
import { loneNode, runFlanneld, type LoneNode } from '../helpers/lone-node.js';
import type { Lab } from '../../src/lab/lab.js';
import { useLab } from '../helpers/lab.js';
import { assertAllPairs } from '../helpers/lab-probe.js';

const VXLAN = '{"Network":"198.19.0.0/16","Backend":{"Type":"vxlan"}}';
const VXLAN_DUAL = '{"Network":"198.19.0.0/16","EnableIPv6":true,"IPv6Network":"2001:db8:100::/56","Backend":{"Type":"vxlan"}}';
const NFT = '{"Network":"198.19.0.0/16","EnableNFTables":true,"Backend":{"Type":"vxlan"}}';

const reqs = [rootAndNetns()];
/** The hidden case is made per daemon; the visible one needs the module loaded on this host. */
const brNetfilterLoaded: Prereq = existsSync(BRIDGE_NF_CALL_IPTABLES) ? { ok: true, reason: '' } : { ok: false, reason: 'needs the br_netfilter module loaded (modprobe br_netfilter)' };

describe('br_netfilter check and nft preflight', suiteNeeds(...reqs), () => {
  let set: NetnsSet;
  const nodes: LoneNode[] = [];
  let made = 0;
  const node = (conf: string): LoneNode => {
    const n = loneNode(set, `b${made++}`, conf);
    nodes.push(n);
    return n;
  };
  before(() => {
    set = new NetnsSet();
  });
  after(async () => {
    await set?.destroy();
    for (const n of nodes) n.cleanup();
  });

  test('iptables mode without br_netfilter: exit 1 naming the module, nothing created', async (t) => {
    if (!need(t, ...reqs)) return;
    for (const [conf, missing] of [[VXLAN, /bridge-nf-call-iptables does not exist/], [VXLAN_DUAL, /bridge-nf-call-iptables and \/proc\/sys\/net\/bridge\/bridge-nf-call-ip6tables does not exist/]] as const) {
      const n = node(conf);
      const r = await runFlanneld(n, ['-ip-masq'], { hideBrNetfilter: true });
      assert.equal(r.code, 1, r.log);
      assert.match(r.log, /^E\d{4} .*Failed to check br_netfilter: .*the br_netfilter kernel module is not loaded.*modprobe br_netfilter/m);
      assert.match(r.log, missing);
      assert.equal(r.started, false);
      assert.deepEqual(n.leases(), [], 'no lease taken');
      assert.deepEqual(n.links().filter((l) => l.startsWith('flannel')), [], 'no device created');
    }
  });

  test('iptables mode with br_netfilter loaded starts', async (t) => {
    if (!need(t, ...reqs, brNetfilterLoaded)) return;
    const visible = await runFlanneld(node(VXLAN_DUAL), []);
    assert.equal(visible.started, true, visible.log);
    assert.doesNotMatch(visible.log, /br_netfilter/);
  });

  test('iptables mode without br_netfilter but -br-netfilter-check=false starts, with a warning', async (t) => {
    if (!need(t, ...reqs)) return;
    const optOut = await runFlanneld(node(VXLAN), ['-br-netfilter-check=false'], { hideBrNetfilter: true });
    assert.equal(optOut.started, true, optOut.log);
    assert.match(optOut.log, /^W\d{4} .*br_netfilter is not loaded; going on as -br-netfilter-check=false asks/m);
  });

  test('nftables mode skips the br_netfilter check', async (t) => {
    if (!need(t, ...reqs, binary('nft'))) return;
    const r = await runFlanneld(node(NFT), ['-ip-masq'], { hideBrNetfilter: true });
    assert.equal(r.started, true, r.log);
    assert.doesNotMatch(r.log, /br_netfilter/);
  });

  test('nftables mode without nft: exit 1 naming the package, before a lease, a device or a rule exists', async (t) => {
    if (!need(t, ...reqs)) return;
    const n = node(NFT);
    // Only node's own directory on PATH: no nft (and no iptables) for this daemon.
    const r = await runFlanneld(n, ['-ip-masq'], { env: { PATH: dirname(process.execPath) } });
    assert.equal(r.code, 1, r.log);
    const errors = r.log.split('\n').filter((l) => l.startsWith('E'));
    assert.equal(errors.length, 1, r.log);
    assert.match(errors[0]!, /nft not found in PATH: install nftables \(apt-get install nftables\)/);
    assert.equal(r.started, false);
    assert.deepEqual(n.leases(), []);
    assert.deepEqual(n.links().filter((l) => l.startsWith('flannel')), []);
    assert.doesNotMatch(r.log, /Allocated lease|VXLAN config/);
  });
});

describe('flannelctl lab on a host without br_netfilter: daemons run with the documented opt-out', suiteNeeds(...reqs), () => {
  let lab: Lab;
  const lines: string[] = [];
  useLab({ nodes: 2, backend: 'udp', ipv6: false, hideBrNetfilter: true, log: (l) => lines.push(l) }, (l) => (lab = l));

  test('the lab says so, each daemon warns and runs, pods reach each other', async (t) => {
    if (!need(t, ...reqs)) return;
    assert.ok(lines.some((l) => l.includes('br_netfilter is not loaded: daemons run with -br-netfilter-check=false')), lines.join('\n'));
    for (const n of lab.nodes) assert.match(lab.daemonLog(n), /br_netfilter is not loaded; going on as -br-netfilter-check=false asks/);
    await assertAllPairs(lab, 2);
  });
});
