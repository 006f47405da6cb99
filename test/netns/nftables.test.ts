// nftables mode (net-conf EnableNFTables) with real daemons: the ruleset read back with `nft -j list`
// equals flannel's (handles and metainfo normalised away; comments from the text listing, which nft
// 1.0.6 leaves out of JSON); pod traffic to a host outside the overlay is masqueraded to the node's
// address, pod-to-pod traffic is not; rules changed by hand come back on the resync period; a chain whose
// option is now off goes; the other mode's leftovers go in both directions.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Lab, LabNode } from '../../src/lab/lab.js';
import type { Namespace } from '../../src/lab/netns.js';
import { normalizeNftJson } from '../../src/firewall/nft-plan.js';
import { binary, need, rootAndNetns, suiteNeeds } from '../helpers/prereq.js';
import { eventually, flannelRules, subnetAddr } from '../helpers/lab-probe.js';
import { useLab } from '../helpers/lab.js';
import { echoes, summary } from '../helpers/echo.js';

const reqs = [rootAndNetns(), binary('nft'), binary('iptables-save')];
const CLUSTER4 = '198.19.0.0/16';
const CLUSTER6 = '2001:db8:100::/56';
const EXTERNAL = '198.18.0.200';

/** nft's JSON for `<proto> <field> [!=] <addr>/<len>`. */
const match = (proto: string, field: string, cidr: string, op = '=='): unknown => {
  const [addr, len] = cidr.split('/');
  return { match: { op, left: { payload: { protocol: proto, field } }, right: { prefix: { addr, len: Number(len) } } } };
};

/** What `nft -j list table` must show for one family, normalised: flannel's chains and rules in order. */
function expectedTable(family: 4 | 6, pod: string): unknown[] {
  return canonical(flannelTable(family, pod));
}

function flannelTable(family: 4 | 6, pod: string): unknown[] {
  const [fam, table, cluster, multicast] = family === 4 ? ['ip', 'flannel-ipv4', CLUSTER4, '224.0.0.0/4'] : ['ip6', 'flannel-ipv6', CLUSTER6, 'ff00::/8'];
  const chain = (name: string, type: string, hook: string, prio: number): unknown => ({ chain: { family: fam, table, name, type, hook, prio, policy: 'accept' } });
  const rule = (name: string, expr: unknown[]): unknown => ({ rule: { family: fam, table, chain: name, expr } });
  const masq = { masquerade: { flags: 'fully-random' } };
  return [
    { table: { family: fam, name: table } },
    chain('forward', 'filter', 'forward', 0),
    chain('postrtg', 'nat', 'postrouting', 100),
    rule('forward', [match(fam, 'saddr', cluster), { accept: null }]),
    rule('forward', [match(fam, 'daddr', cluster), { accept: null }]),
    // kube-proxy's mark as the iptables rule matches it: the bit, not the whole mark.
    rule('postrtg', [{ match: { op: '==', left: { '&': [{ meta: { key: 'mark' } }, 16384] }, right: 16384 } }, { return: null }]),
    rule('postrtg', [match(fam, 'saddr', pod), match(fam, 'daddr', cluster), { return: null }]),
    rule('postrtg', [match(fam, 'saddr', cluster), match(fam, 'daddr', pod), { return: null }]),
    rule('postrtg', [match(fam, 'saddr', pod, '!='), match(fam, 'daddr', cluster), { return: null }]),
    rule('postrtg', [match(fam, 'saddr', cluster), match(fam, 'daddr', multicast, '!='), masq]),
    rule('postrtg', [match(fam, 'saddr', cluster, '!='), match(fam, 'daddr', cluster), masq]),
  ];
}

/**
 * A table's items with the chains sorted by name, each chain's rules in their order: nft lists chains
 * in creation order, and one re-created by hand comes after the others.
 */
function canonical(items: unknown[]): unknown[] {
  const key = (x: unknown): string => {
    const o = x as { table?: unknown; chain?: { name: string }; rule?: { chain: string } };
    return o.table ? '0' : o.chain ? `1 ${o.chain.name}` : `2 ${o.rule!.chain}`;
  };
  // Array.prototype.sort is stable: rules keep their order within a chain.
  return [...items].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}
const listTable = (ns: Namespace, family: 4 | 6): unknown[] =>
  canonical(normalizeNftJson((JSON.parse(ns.exec('nft', ['-j', 'list', 'table', family === 4 ? 'ip' : 'ip6', family === 4 ? 'flannel-ipv4' : 'flannel-ipv6'])) as { nftables: unknown[] }).nftables) as unknown[]);
const tables = (ns: Namespace): string[] => ns.exec('nft', ['list', 'tables']).trim().split('\n').filter(Boolean).sort();
const chainsOf = (ns: Namespace, family: 4 | 6): string[] =>
  listTable(ns, family).flatMap((x) => ((x as { chain?: { name: string } }).chain ? [(x as { chain: { name: string } }).chain.name] : [])).sort();
/** A counter rule's packet count from `nft -j list table ip t` in a test namespace. */
function counter(ns: Namespace, index: number): number {
  const rules = (JSON.parse(ns.exec('nft', ['-j', 'list', 'table', 'ip', 't'])) as { nftables: Array<{ rule?: { expr: Array<{ counter?: { packets: number } }> } }> }).nftables.filter((x) => x.rule);
  return rules[index]?.rule?.expr.find((e) => e.counter)?.counter?.packets ?? -1;
}

describe('nftables mode: 2 nodes, vxlan, IPv4 + IPv6, -ip-masq', suiteNeeds(...reqs), () => {
  let lab: Lab;
  // Node 1 gets extra flags per restart (set by the tests below).
  let n1Args: string[] = [];
  useLab(
    { nodes: 2, backend: 'vxlan', ipv6: true, daemonArgs: ['-ip-masq', '-iptables-resync=1'], netConfExtra: { EnableNFTables: true }, nodeArgs: (i) => (i === 0 ? n1Args : []) },
    (l) => (lab = l),
  );
  const pod4 = (n: LabNode): string => `${subnetAddr(n.subnetEnv.FLANNEL_SUBNET!)}/24`;
  const pod6 = (n: LabNode): string => `${subnetAddr(n.subnetEnv.FLANNEL_IPV6_SUBNET!)}/64`;
  const restart = async (n: LabNode): Promise<void> => {
    await lab.stopDaemon(n);
    lab.startDaemon(n);
    await lab.waitForPeers();
  };

  test('the ruleset read back with nft -j list is flannel\'s, comments as knftables writes them', async (t) => {
    if (!need(t, ...reqs)) return;
    for (const n of lab.nodes) {
      assert.deepEqual(listTable(n.ns, 4), expectedTable(4, pod4(n)), n.name);
      assert.deepEqual(listTable(n.ns, 6), expectedTable(6, pod6(n)), n.name);
      const text = n.ns.exec('nft', ['list', 'ruleset']);
      for (const c of ['rules for flannel-ipv4', 'rules for flannel-ipv6', 'chain to accept flannel traffic', 'chain to manage traffic masquerading by flannel']) {
        assert.ok(text.includes(`comment "${c}"`), `${n.name}: ${c}`);
      }
      assert.deepEqual(flannelRules(n, 4, 'nat'), [], 'no iptables-mode rules');
    }
  });

  test('pod traffic to an outside host is masqueraded to the node address; pod-to-pod is not', async (t) => {
    if (!need(t, ...reqs)) return;
    const [n1, n2] = lab.nodes as [LabNode, LabNode];
    const ext = lab.addExternalHost('x', EXTERNAL);
    // Counters: from n1's underlay address (masqueraded), from any pod address (not masqueraded).
    ext.exec('nft', ['-f', '-'], { input: `add table ip t\nadd chain ip t in { type filter hook input priority 0 ; }\nadd rule ip t in ip saddr ${n1.underlayIP} icmp type echo-request counter\nadd rule ip t in ip saddr ${CLUSTER4} counter\n` });
    const r = await echoes(n1.pod, EXTERNAL, { count: 2, timeoutMs: 2000 });
    assert.equal(r.received, 2, `the outside host (no route to the overlay) answers only a masqueraded echo: ${summary(r)}`);
    assert.ok(counter(ext, 0) >= 2);
    assert.equal(counter(ext, 1), 0, 'no packet arrived with a pod source address');
    // n2's pod sees n1's pod address: the RETURN rule kept it.
    n2.pod.exec('nft', ['-f', '-'], { input: `add table ip t\nadd chain ip t in { type filter hook input priority 0 ; }\nadd rule ip t in ip saddr ${n1.podIP} icmp type echo-request counter\n` });
    assert.ok((await lab.ping(n1, n2, 4, n2.podIP)).ok);
    assert.ok(counter(n2.pod, 0) >= 1);
  });

  test('rules changed by hand are set up again within the resync period', async (t) => {
    if (!need(t, ...reqs)) return;
    const n2 = lab.nodes[1]!;
    const want4 = expectedTable(4, pod4(n2));
    n2.ns.exec('nft', ['flush', 'chain', 'ip', 'flannel-ipv4', 'postrtg']);
    n2.ns.exec('nft', ['delete', 'chain', 'ip6', 'flannel-ipv6', 'forward']);
    assert.notDeepEqual(listTable(n2.ns, 4), want4);
    assert.ok(await eventually(() => JSON.stringify(listTable(n2.ns, 4)) === JSON.stringify(want4) && JSON.stringify(listTable(n2.ns, 6)) === JSON.stringify(expectedTable(6, pod6(n2))), 10_000, 200));
    assert.match(lab.daemonLog(n2), /Some nftables rules are missing or changed; setting them up again/);
  });

  test('a chain whose option is now off is removed at start (-ip-masq off: postrtg goes, forward stays)', async (t) => {
    if (!need(t, ...reqs)) return;
    const n1 = lab.nodes[0]!;
    n1Args = ['-ip-masq=false'];
    await restart(n1);
    assert.deepEqual([chainsOf(n1.ns, 4), chainsOf(n1.ns, 6)], [['forward'], ['forward']]);
    n1Args = [];
    await restart(n1);
    assert.deepEqual(listTable(n1.ns, 4), expectedTable(4, pod4(n1)));
  });

  test('iptables-mode leftovers are removed completely when starting in nftables mode', async (t) => {
    if (!need(t, ...reqs)) return;
    const n1 = lab.nodes[0]!;
    await lab.stopDaemon(n1);
    // What flannel's iptables mode leaves (including the jump that keeps flannel's own clean-up from deleting FLANNEL-POSTRTG).
    for (const [save, restore] of [['iptables-save', 'iptables-restore'], ['ip6tables-save', 'ip6tables-restore']] as const) {
      n1.ns.exec(restore, ['--noflush'], {
        input: '*nat\n:FLANNEL-POSTRTG - [0:0]\n-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG\n-A FLANNEL-POSTRTG -j RETURN\nCOMMIT\n*filter\n:FLANNEL-FWD - [0:0]\n-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD\n-A FLANNEL-FWD -j ACCEPT\nCOMMIT\n',
      });
      assert.match(n1.ns.exec(save, ['-t', 'nat']), /FLANNEL-POSTRTG/);
    }
    lab.startDaemon(n1);
    await lab.waitForPeers();
    for (const family of [4, 6] as const) {
      assert.deepEqual([...flannelRules(n1, family, 'nat'), ...flannelRules(n1, family, 'filter')], [], `IPv${family}`);
    }
  });

  test('nftables-mode tables are removed when the node starts in iptables mode, and come back after', async (t) => {
    if (!need(t, ...reqs)) return;
    const n1 = lab.nodes[0]!;
    const conf = join(lab.storeDir, 'config');
    const nft = lab.netConfText();
    try {
      writeFileSync(conf, JSON.stringify({ ...lab.netConf(), EnableNFTables: false }));
      await restart(n1);
      assert.deepEqual(tables(n1.ns).filter((l) => l.includes('flannel')), []);
      assert.equal(flannelRules(n1, 4, 'nat').length, 8, 'iptables-mode rules instead');
    } finally {
      writeFileSync(conf, nft);
    }
    await restart(n1);
    assert.deepEqual(tables(n1.ns).filter((l) => l.includes('flannel')), ['table ip flannel-ipv4', 'table ip6 flannel-ipv6']);
    // Our iptables mode removes its rules on a clean stop, and the nftables start would anyway.
    assert.deepEqual(flannelRules(n1, 4, 'nat'), []);
    assert.deepEqual(listTable(n1.ns, 4), expectedTable(4, pod4(n1)));
  });
});
