// nftables mode as data and plan: the exact transactions knftables writes for flannel, the read-back
// normalisation, stale-chain removal, resync repairs, preflight, and the choice between the modes with
// the other mode's clean-up (an in-memory nft and iptables).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseNetworkConfig } from '../../src/config/netconf.js';
import { parseCIDR } from '../../src/ip/index.js';
import { chainLines, forwardChain, fullyRandomProbe, postrtgChain, NFT_TABLES, addTableLine } from '../../src/firewall/nft-rules.js';
import { findNftProblems, normalizeNftJson, parseNftTable, setupScript, chainFingerprint } from '../../src/firewall/nft-plan.js';
import { NftFirewall } from '../../src/firewall/nft-firewall.js';
import { nftTooOld } from '../../src/firewall/nft.js';
import { leftoverPayload } from '../../src/firewall/plan.js';
import { parseSave } from '../../src/firewall/iptables-save.js';
import { TrafficRules } from '../../src/firewall/traffic.js';
import { BRIDGE_NF_CALL_IP6TABLES, BRIDGE_NF_CALL_IPTABLES, brNetfilterProblem } from '../../src/firewall/br-netfilter.js';
import type { Lease } from '../../src/subnet/types.js';
import { FakeNft } from '../helpers/fake-nft.js';
import { FakeIptables } from '../helpers/fake-iptables.js';
import { captureLogs } from '../helpers/logs.js';

const net4 = parseCIDR('198.19.0.0/16')!;
const lease: Lease = { subnet: parseCIDR('198.19.5.0/24'), ipv6Subnet: parseCIDR('2001:db8:100:5::/64'), attrs: { backendType: 'vxlan' }, expiration: new Date() };
const nftConf = parseNetworkConfig('{"Network":"198.19.0.0/16","EnableIPv6":true,"IPv6Network":"2001:db8:100::/56","EnableNFTables":true,"Backend":{"Type":"vxlan"}}');
const iptConf = parseNetworkConfig('{"Network":"198.19.0.0/16","EnableIPv6":true,"IPv6Network":"2001:db8:100::/56","Backend":{"Type":"vxlan"}}');
const opts = { ipMasq: true, forwardRules: true, resyncSeconds: 3600, brNetfilterCheck: true };

test('the transactions are knftables\' text for flannel\'s tables, chains, comments and rules (ours: the mark as a bit test)', () => {
  assert.equal(addTableLine(NFT_TABLES[4]), 'add table ip flannel-ipv4 { comment "rules for flannel-ipv4" ; }');
  assert.deepEqual(chainLines(forwardChain(4, net4)), [
    'add chain ip flannel-ipv4 forward { type filter hook forward priority 0 ; comment "chain to accept flannel traffic" ; }',
    'flush chain ip flannel-ipv4 forward',
    'add rule ip flannel-ipv4 forward ip saddr 198.19.0.0/16 accept',
    'add rule ip flannel-ipv4 forward ip daddr 198.19.0.0/16 accept',
  ]);
  assert.deepEqual(chainLines(postrtgChain(6, parseCIDR('2001:db8:100::/56')!, lease.ipv6Subnet!, false)), [
    'add chain ip6 flannel-ipv6 postrtg { type nat hook postrouting priority 100 ; comment "chain to manage traffic masquerading by flannel" ; }',
    'flush chain ip6 flannel-ipv6 postrtg',
    'add rule ip6 flannel-ipv6 postrtg meta mark & 0x4000 == 0x4000 return',
    'add rule ip6 flannel-ipv6 postrtg ip6 saddr 2001:db8:100:5::/64 ip6 daddr 2001:db8:100::/56 return',
    'add rule ip6 flannel-ipv6 postrtg ip6 saddr 2001:db8:100::/56 ip6 daddr 2001:db8:100:5::/64 return',
    'add rule ip6 flannel-ipv6 postrtg ip6 saddr != 2001:db8:100:5::/64 ip6 daddr 2001:db8:100::/56 return',
    'add rule ip6 flannel-ipv6 postrtg ip6 saddr 2001:db8:100::/56 ip6 daddr != ff00::/8 masquerade',
    'add rule ip6 flannel-ipv6 postrtg ip6 saddr != 2001:db8:100::/56 ip6 daddr 2001:db8:100::/56 masquerade',
  ]);
  assert.match(postrtgChain(4, net4, lease.subnet!, true).rules[4]!, /224\.0\.0\.0\/4 masquerade fully-random$/);
  assert.match(fullyRandomProbe(), /add rule ip flannel-ipv4 masqueradeTest ip saddr != 127\.0\.0\.1 masquerade fully-random/);
});

test('setup script: the table always, chains as add + flush + rules, a chain of ours whose option is off deleted', () => {
  const current = new Map([['forward', { rules: [] }], ['postrtg', { rules: [] }], ['other', { rules: [] }]]);
  const script = setupScript(NFT_TABLES[4], [forwardChain(4, net4)], current);
  assert.deepEqual(script.trim().split('\n'), [addTableLine(NFT_TABLES[4]), ...chainLines(forwardChain(4, net4)), 'delete chain ip flannel-ipv4 postrtg']);
  assert.equal(setupScript(NFT_TABLES[6], [], undefined), 'add table ip6 flannel-ipv6 { comment "rules for flannel-ipv6" ; }\n');
});

test('read-back: handles and metainfo normalised away; problems name the missing or changed chain', () => {
  const listed = JSON.stringify({
    nftables: [
      { metainfo: { version: '1.0.6', json_schema_version: 1 } },
      { table: { family: 'ip', name: 'flannel-ipv4', handle: 3 } },
      { chain: { family: 'ip', table: 'flannel-ipv4', name: 'forward', handle: 1, type: 'filter', hook: 'forward', prio: 0, policy: 'accept' } },
      { rule: { family: 'ip', table: 'flannel-ipv4', chain: 'forward', handle: 2, expr: [{ accept: null }] } },
    ],
  });
  assert.deepEqual(normalizeNftJson(JSON.parse(listed)), { nftables: [{ table: { family: 'ip', name: 'flannel-ipv4' } }, { chain: { family: 'ip', table: 'flannel-ipv4', name: 'forward', type: 'filter', hook: 'forward', prio: 0, policy: 'accept' } }, { rule: { family: 'ip', table: 'flannel-ipv4', chain: 'forward', expr: [{ accept: null }] } }] });
  const state = parseNftTable(listed);
  const recorded = new Map([['forward', chainFingerprint(state.get('forward'))]]);
  assert.deepEqual(findNftProblems(NFT_TABLES[4], recorded, state), []);
  assert.deepEqual(findNftProblems(NFT_TABLES[4], recorded, parseNftTable(listed.replace(',"handle":2', ',"handle":9'))), [], 'a new handle is no change');
  assert.deepEqual(findNftProblems(NFT_TABLES[4], recorded, new Map()), ['chain forward missing in table ip flannel-ipv4']);
  assert.deepEqual(findNftProblems(NFT_TABLES[4], recorded, new Map([['forward', { rules: [] }]])), ['chain forward in table ip flannel-ipv4 changed']);
  assert.deepEqual(findNftProblems(NFT_TABLES[4], recorded, undefined), ['table ip flannel-ipv4 missing']);
  assert.equal(nftTooOld('nftables v1.0.0 (Fearless Fosdick #2)'), true);
  assert.equal(nftTooOld('nftables v0.9.8 (E.D.S.)'), true);
  assert.equal(nftTooOld('nftables v1.0.6 (Lester Gooch #5)'), false);
});

test('NftFirewall: both tables, fully-random when nft --check accepts it, re-applied on resync, tables kept on teardown', async () => {
  const { lines, restore } = captureLogs();
  try {
    const nft = new FakeNft();
    const fw = new NftFirewall(nft, opts);
    await fw.preflight();
    await fw.setup(nftConf, lease);
    assert.deepEqual([...nft.tables.keys()], ['ip flannel-ipv4', 'ip6 flannel-ipv6']);
    assert.equal(nft.scripts.length, 2, 'one transaction per table');
    assert.deepEqual(nft.rules('ip flannel-ipv4', 'postrtg'), postrtgChain(4, net4, lease.subnet!, true).rules);
    assert.equal(await fw.ensure(), 0);
    nft.tables.get('ip flannel-ipv4')!.get('postrtg')!.rules.pop();
    nft.tables.get('ip6 flannel-ipv6')!.delete('forward');
    assert.equal(await fw.ensure(), 2);
    assert.deepEqual(nft.rules('ip flannel-ipv4', 'postrtg'), postrtgChain(4, net4, lease.subnet!, true).rules);
    assert.ok(nft.rules('ip6 flannel-ipv6', 'forward'));
    await fw.teardown();
    assert.equal(nft.tables.size, 2, 'flannel leaves its tables on exit');
    assert.ok(lines.some((l) => l.includes('Some nftables rules are missing or changed')));

    const noRandom = new FakeNft();
    noRandom.accept = (s) => !s.includes('fully-random');
    await new NftFirewall(noRandom, { ...opts, ipMasq: true }).setup(nftConf, lease);
    assert.ok(noRandom.rules('ip flannel-ipv4', 'postrtg')!.every((r) => !r.includes('fully-random')));
    assert.ok(lines.some((l) => l.startsWith('W') && l.includes('nftables: random fully unsupported')));
    const disabled = new FakeNft();
    await new NftFirewall(disabled, { ...opts, randomFullyDisable: true }).setup(nftConf, lease);
    assert.equal(disabled.checks.length, 0, 'not even probed when disabled');
  } finally {
    restore();
  }
});

test('NftFirewall preflight: nft missing, too old or not permitted is one clear error, and nothing was run', async () => {
  const missing = new FakeNft();
  missing.missing = true;
  await assert.rejects(new NftFirewall(missing, opts).preflight(), /nft not found in PATH: install nftables \(apt-get install nftables\)/);
  const old = new FakeNft();
  old.versionText = 'nftables v0.9.8 (E.D.S.)';
  await assert.rejects(new NftFirewall(old, opts).preflight(), /v1\.0\.1 or later \(got nftables v0\.9\.8/);
  const denied = new FakeNft();
  denied.accept = () => false;
  await assert.rejects(new NftFirewall(denied, opts).preflight(), /refused to add table ip flannel-ipv4/);
  assert.deepEqual([missing.scripts, old.scripts, denied.scripts], [[], [], []]);
});

test('iptables leftovers: every jump to FLANNEL-POSTRTG / FLANNEL-FWD and the chains, in whichever table', async () => {
  const ipt = new FakeIptables();
  await ipt.restore(4, '*nat\n:FLANNEL-POSTRTG - [0:0]\n-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG\n-A FLANNEL-POSTRTG -j RETURN\n-A POSTROUTING -j MASQUERADE\nCOMMIT\n*filter\n:FLANNEL-FWD - [0:0]\n-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD\n-A FLANNEL-FWD -j ACCEPT\nCOMMIT\n');
  const saved = new Map([...parseSave(await ipt.save(4, 'nat')), ...parseSave(await ipt.save(4, 'filter'))]);
  const payload = leftoverPayload(saved);
  await ipt.restore(4, payload);
  assert.deepEqual(await ipt.lines(4, 'nat'), ['-A POSTROUTING -j MASQUERADE'], 'only the foreign rule stays');
  assert.deepEqual(await ipt.lines(4, 'filter'), []);
  assert.equal(leftoverPayload(new Map([...parseSave(await ipt.save(4, 'nat'))])), '', 'nothing left to do');
});

test('mode choice: nftables cleans iptables leftovers (a note without iptables); iptables mode deletes the nft tables', async () => {
  const { lines, restore } = captureLogs();
  try {
    const nft = new FakeNft();
    const ipt = new FakeIptables();
    await ipt.restore(6, '*nat\n:FLANNEL-POSTRTG - [0:0]\n-A POSTROUTING -j FLANNEL-POSTRTG\nCOMMIT\n');
    const toNft = new TrafficRules({ iptables: ipt, nft }, opts);
    await toNft.preflight(nftConf);
    await toNft.setup(nftConf, lease);
    assert.deepEqual(await ipt.lines(6, 'nat'), []);
    assert.equal(nft.tables.size, 2);
    await toNft.teardown();

    const noIptables = new FakeIptables();
    noIptables.missing = true;
    await new TrafficRules({ iptables: noIptables, nft: new FakeNft() }, opts).setup(nftConf, lease);
    assert.ok(lines.some((l) => l.includes('iptables-save not found: no iptables-mode rules to clean up (IPv4)')));

    const toIpt = new TrafficRules({ iptables: new FakeIptables(), nft, exists: () => true }, opts);
    await toIpt.preflight(iptConf);
    await toIpt.setup(iptConf, lease);
    assert.equal(nft.tables.size, 0, 'flannel-ipv4 and flannel-ipv6 deleted');
    assert.equal(nft.scripts.at(-1), 'delete table ip flannel-ipv4\ndelete table ip6 flannel-ipv6\n', 'in one transaction');
    await toIpt.teardown();
    // Without nft, iptables mode has no nftables leftovers to find: no error.
    const noNft = new FakeNft();
    noNft.missing = true;
    await new TrafficRules({ iptables: new FakeIptables(), nft: noNft, exists: () => true }, opts).setup(iptConf, lease);
    assert.ok(!lines.some((l) => l.startsWith('E')), lines.filter((l) => l.startsWith('E')).join('\n'));
  } finally {
    restore();
  }
});

test('br_netfilter: iptables mode needs the sysctls of the enabled families; nftables mode and the opt-out do not', async () => {
  const { lines, restore } = captureLogs();
  try {
    const none = (): boolean => false;
    assert.match(brNetfilterProblem(iptConf, none)!, new RegExp(`${BRIDGE_NF_CALL_IPTABLES} and ${BRIDGE_NF_CALL_IP6TABLES} does not exist: the br_netfilter kernel module is not loaded`));
    assert.equal(brNetfilterProblem(iptConf, (p) => p === BRIDGE_NF_CALL_IPTABLES)?.includes(BRIDGE_NF_CALL_IP6TABLES), true);
    assert.equal(brNetfilterProblem(parseNetworkConfig('{"Network":"198.19.0.0/16"}'), (p) => p === BRIDGE_NF_CALL_IPTABLES), undefined);
    assert.equal(brNetfilterProblem(nftConf, none), undefined);
    await assert.rejects(new TrafficRules({ iptables: new FakeIptables(), nft: new FakeNft(), exists: none }, opts).preflight(iptConf), /modprobe br_netfilter/);
    await new TrafficRules({ iptables: new FakeIptables(), nft: new FakeNft(), exists: none }, { ...opts, brNetfilterCheck: false }).preflight(iptConf);
    assert.ok(lines.some((l) => l.startsWith('W') && l.includes('-br-netfilter-check=false')));
  } finally {
    restore();
  }
});
