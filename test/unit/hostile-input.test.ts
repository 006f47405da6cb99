// Hostile control input, property style: seeded random and adversarial values fed to every decoder of
// what the store, the API server or the command line hands us. Each call must return a valid result or
// throw the decoder's own clear error, never an unguarded JavaScript failure, never pollute
// Object.prototype, never take unbounded work: every regex run on the hostile input is replayed with a
// backtrack limit (test/helpers/regex-work.ts), so a catastrophic regex fails by count, not by the
// clock. A failure prints its seed.
// First: it sets V8's backtrack limit, which applies to regexes compiled after it (the decoders' too).
import { BACKTRACK_LIMIT, RegexRecorder, replayWithBacktrackLimit } from '../helpers/regex-work.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseNetworkConfig } from '../../src/config/netconf.js';
import { FLANNELD_FLAGS, FlagError, parseFlags, toOptions } from '../../src/config/flags.js';
import { decodeLeaseFile } from '../../src/subnet/file/lease-file.js';
import { decodeLeaseAttrs, LeaseFormatError, parseSubnetKey } from '../../src/subnet/lease.js';
import { annotationNames, NodeLeaseError, nodeToLease, ownNodeAnnotations, type NodeLike } from '../../src/subnet/kube/annotations.js';
import { assertNoPollution, ENGINE_ERROR, leaf, mutate, pick, prng, text, tree, type Rand } from '../helpers/hostile.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20261125);
const ITERATIONS = Number(process.env.FUZZ_ITERATIONS ?? 2000);

interface Tally {
  ok: number;
  rejected: number;
  regexExecutions: number;
}

/**
 * Runs `body` ITERATIONS times with a PRNG per target; `body` returns normally for a valid result and
 * throws for a rejection; `isClean` decides whether a thrown value is the decoder's own error.
 */
function fuzz(name: string, seedOffset: number, isClean: (e: unknown) => boolean, body: (r: Rand) => void): Tally {
  const r = prng(SEED + seedOffset);
  const tally: Tally = { ok: 0, rejected: 0, regexExecutions: 0 };
  const regexes = new RegexRecorder();
  for (let i = 0; i < ITERATIONS; i++) {
    try {
      regexes.during(() => body(r));
      tally.ok++;
    } catch (e) {
      const msg = e instanceof Error ? `${e.constructor.name}: ${e.message}` : `non-Error ${String(e)}`;
      if (!isClean(e) || ENGINE_ERROR.test(msg) || (e as Error).message.length === 0) {
        assert.fail(`${name}: seed ${SEED} iteration ${i}: unclean failure ${msg.slice(0, 300)}`);
      }
      tally.rejected++;
    }
    assertNoPollution();
  }
  const work = replayWithBacktrackLimit(regexes.runs());
  assert.deepEqual(work.unbounded, [], `${name}: regexes run on hostile input whose work cannot be bounded; write them without backreferences, lookarounds, i/u flags or large counted repeats`);
  assert.deepEqual(work.excessive.slice(0, 5), [], `${name}: seed ${SEED}: more than ${BACKTRACK_LIMIT} backtracks in one execution (${work.excessive.length} executions)`);
  tally.regexExecutions = work.executions;
  return tally;
}

const report = (t: { diagnostic(s: string): void }, name: string, x: Tally): void =>
  t.diagnostic(`${name}: ${ITERATIONS} iterations (seed ${SEED}): ${x.ok} valid, ${x.rejected} rejected cleanly, ${x.regexExecutions} distinct regex executions within the backtrack limit`);

const VALID_NETCONF = { Network: '198.19.0.0/16', SubnetLen: 24, SubnetMin: '198.19.1.0', SubnetMax: '198.19.200.0', EnableIPv6: true, IPv6Network: '2001:db8:100::/56', IPv6SubnetLen: 64, Backend: { Type: 'vxlan', VNI: 1, Port: 8472, DirectRouting: true } };

test('parseNetworkConfig: random, mutated and malformed net-conf.json', (t) => {
  const isClean = (e: unknown): boolean => e instanceof Error && e.message.startsWith('net-conf: ');
  const x = fuzz('parseNetworkConfig', 1, isClean, (r) => {
    const roll = r();
    const v = roll < 0.5 ? mutate(r, r() < 0.5 ? VALID_NETCONF : { ...VALID_NETCONF, Backend: mutate(r, VALID_NETCONF.Backend) }) : roll < 0.8 ? tree(r, 5) : { ...VALID_NETCONF, Backend: tree(r, 3) };
    const c = parseNetworkConfig(text(r, v));
    // A config that passed must be usable: enabled families have a network and sane lengths.
    if (c.enableIPv4) assert.ok(c.network && c.subnetLen >= c.network.prefixLen && c.subnetLen <= 32 && c.subnetMin && c.subnetMax && c.subnetMin.value <= c.subnetMax.value, JSON.stringify(c.source));
    if (c.enableIPv6) assert.ok(c.ipv6Network && c.ipv6SubnetLen >= c.ipv6Network.prefixLen && c.ipv6SubnetLen <= 128, c.source);
    assert.equal(typeof c.backend.type, 'string');
  });
  assert.ok(x.ok > ITERATIONS / 20, `too few valid configs (${x.ok}): the mutations never get past the first check`);
  report(t, 'parseNetworkConfig', x);
});

const VALID_LEASE = { PublicIP: '198.18.0.11', PublicIPv6: '2001:db8::11', BackendType: 'vxlan', BackendData: { VNI: 1, VtepMAC: 'd2:5e:7f:06:2e:52' }, BackendV6Data: null };

test('lease JSON decoder (etcd values and lease files): only LeaseFormatError', (t) => {
  const isClean = (e: unknown): boolean => e instanceof LeaseFormatError;
  const x = fuzz('decodeLeaseAttrs', 2, isClean, (r) => {
    const v = r() < 0.6 ? mutate(r, VALID_LEASE) : tree(r, 5);
    const a = decodeLeaseAttrs(text(r, v));
    assert.equal(typeof a.backendType, 'string');
    if (a.publicIP) assert.equal(a.publicIP.family, 4);
    if (a.publicIPv6) assert.equal(a.publicIPv6.family, 6);
  });
  report(t, 'decodeLeaseAttrs', x);
  const y = fuzz('decodeLeaseFile', 3, isClean, (r) => {
    const name = r() < 0.5 ? pick(r, ['198.19.1.0-24', '198.19.1.0-24&2001:db8:100::-64', '198.19.1.0-33', '-24', '198.19.1.0', '2001:db8::-64', '__proto__', '']) : String(leaf(r));
    parseSubnetKey(name); // must not throw for any string
    const v = mutate(r, { ...VALID_LEASE, Expiration: '2026-11-25T00:00:00Z' });
    decodeLeaseFile(name, text(r, v));
  });
  report(t, 'decodeLeaseFile', y);
});

const NAMES = annotationNames();
const validNode = (): Record<string, unknown> => ({
  metadata: {
    name: 'n2',
    annotations: {
      [NAMES.backendType]: 'vxlan',
      [NAMES.backendData]: '{"VNI":1,"VtepMAC":"d2:5e:7f:06:2e:52"}',
      [NAMES.publicIP]: '198.18.0.12',
      [NAMES.publicIPv6]: '2001:db8::12',
      [NAMES.backendV6Data]: 'null',
      [NAMES.kubeSubnetManager]: 'true',
    },
  },
  spec: { podCIDR: '198.19.2.0/24', podCIDRs: ['198.19.2.0/24', '2001:db8:100:2::/64'] },
});

test('kube annotation codec: nodes as the API server could send them (wrong types included)', (t) => {
  const isClean = (e: unknown): boolean => e instanceof NodeLeaseError;
  const x = fuzz('nodeToLease', 4, isClean, (r) => {
    const node = validNode();
    const meta = node.metadata as Record<string, unknown>;
    const where = r();
    if (where < 0.45) meta.annotations = mutate(r, meta.annotations as Record<string, unknown>);
    else if (where < 0.8) node.spec = mutate(r, node.spec as Record<string, unknown>);
    else if (where < 0.9) node.metadata = mutate(r, meta);
    else Object.assign(node, { spec: tree(r, 3) });
    // What the client hands over is parsed JSON: round-trip so the shapes are exactly wire shapes.
    const wire = JSON.parse(JSON.stringify(node)) as NodeLike;
    const families = pick(r, [{ enableIPv4: true, enableIPv6: false }, { enableIPv4: false, enableIPv6: true }, { enableIPv4: true, enableIPv6: true }]);
    const l = nodeToLease(wire, NAMES, families, new Date(0));
    if (families.enableIPv4) assert.ok(l.subnet?.family === 4 && l.attrs.publicIP?.family === 4);
    if (families.enableIPv6) assert.ok(l.ipv6Subnet?.family === 6 && l.attrs.publicIPv6?.family === 6);
  });
  report(t, 'nodeToLease', x);
  // Our own node's current annotations (possibly garbage written by someone else): a patch, never a throw.
  const y = fuzz('ownNodeAnnotations', 5, () => false, (r) => {
    const current = JSON.parse(JSON.stringify(mutate(r, (validNode().metadata as { annotations: Record<string, unknown> }).annotations))) as Record<string, string>;
    const u = ownNodeAnnotations(current, { publicIP: { family: 4, value: 0xc612000bn }, backendType: 'udp', backendData: tree(r, 2) }, NAMES);
    for (const v of Object.values(u.changes)) assert.equal(typeof v, 'string');
  });
  report(t, 'ownNodeAnnotations', y);
});

test('parseFlags + toOptions: hostile argv and FLANNELD_* environment, only FlagError', (t) => {
  const names = FLANNELD_FLAGS.map((f) => f.name);
  const isClean = (e: unknown): boolean => e instanceof FlagError;
  const x = fuzz('parseFlags', 6, isClean, (r) => {
    const argv: string[] = [];
    const n = Math.floor(r() * 6);
    for (let i = 0; i < n; i++) {
      const name = r() < 0.85 ? pick(r, names) : pick(r, ['', '-', 'help', 'h', 'v', '__proto__', 'constructor', 'nope', '=x']);
      const dash = pick(r, ['-', '--', '---', '']);
      const value = String(leaf(r));
      const form = r();
      if (form < 0.4) argv.push(`${dash}${name}=${value}`);
      else if (form < 0.7) argv.push(`${dash}${name}`, value);
      else argv.push(`${dash}${name}`);
    }
    const env: Record<string, string> = {};
    if (r() < 0.5) env[`FLANNELD_${pick(r, names).toUpperCase().replace(/-/g, '_')}`] = String(leaf(r));
    if (r() < 0.1) env.FLANNELD___PROTO__ = 'x';
    const p = parseFlags(argv, env);
    const o = toOptions(p);
    assert.equal(typeof o.iface, 'object');
    assert.ok(Number.isFinite(o.healthzPort) && Number.isFinite(o.subnetLeaseRenewMargin));
  });
  report(t, 'parseFlags', x);
});
