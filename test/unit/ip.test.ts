import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  containsIP,
  containsNet,
  countSubnets,
  firstUsable,
  formatCIDR,
  formatIP,
  iterateSubnets,
  maskNet,
  mustParseIP,
  nextSubnet,
  overlaps,
  parseCIDR,
  parseIP,
  parseIPWithPrefix,
  pickFreeSubnet,
} from '../../src/ip/index.js';
import type { IPNet } from '../../src/ip/index.js';

const cidr = (s: string): IPNet => {
  const n = parseCIDR(s);
  assert.ok(n, `test vector ${s} must parse`);
  return n;
};

describe('parseIP / formatIP', () => {
  const roundTrips: Array<[string, string, 4 | 6]> = [
    ['198.18.0.11', '198.18.0.11', 4],
    ['0.0.0.0', '0.0.0.0', 4],
    ['255.255.255.255', '255.255.255.255', 4],
    ['2001:db8::1', '2001:db8::1', 6],
    ['2001:DB8:0:0:0:0:0:1', '2001:db8::1', 6],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1', 6], // first of equal runs compressed
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1', 6], // single zero group not compressed
    ['2001:0db8:0000:0000:0000:0000:0000:0000', '2001:db8::', 6],
    ['::', '::', 6],
    ['::1', '::1', 6],
    ['2001:db8:0:0:1::', '2001:db8:0:0:1::', 6], // the longer (trailing) run wins
    ['::ffff:198.18.0.1', '198.18.0.1', 4], // IPv4-mapped is IPv4, as in Go
    ['::198.18.0.1', '::c612:1', 6],
    ['2001:db8::198.18.0.1', '2001:db8::c612:1', 6],
  ];
  for (const [input, want, family] of roundTrips) {
    test(`${input} → ${want}`, () => {
      const ip = parseIP(input);
      assert.ok(ip);
      assert.equal(ip.family, family);
      assert.equal(formatIP(ip), want);
    });
  }
  const invalid = ['', '1.2.3', '1.2.3.4.5', '256.1.1.1', '01.2.3.4', '1.2.3.-4', ' 1.2.3.4', '::1::2', ':1', '1:', '1:2:3:4:5:6:7:8:9',
    '1:2:3:4:5:6:7', '12345::', 'g::1', 'fe80::1%eth0', '1.2.3.4/24', '::1.2.3', '1::2:3:4:5:6:7:8'];
  for (const s of invalid) {
    test(`rejects ${JSON.stringify(s)}`, () => assert.equal(parseIP(s), undefined));
  }
  test('mustParseIP names the text', () => assert.throws(() => mustParseIP('1.2.3'), /"1\.2\.3"/));
  test('numeric values', () => {
    assert.equal(parseIP('198.18.0.11')?.value, 0xc612000bn);
    assert.equal(parseIP('2001:db8::1')?.value, (0x20010db8n << 96n) | 1n);
  });
});

describe('parseCIDR / parseIPWithPrefix', () => {
  const good: Array<[string, string]> = [
    ['198.19.90.1/24', '198.19.90.0/24'],
    ['198.19.0.0/16', '198.19.0.0/16'],
    ['198.18.0.11/32', '198.18.0.11/32'],
    ['198.18.0.11/0', '0.0.0.0/0'],
    ['2001:db8::1/64', '2001:db8::/64'],
    ['2001:db8::1/128', '2001:db8::1/128'],
    ['2001:db8::/0', '::/0'],
  ];
  for (const [input, want] of good) {
    test(`${input} → ${want}`, () => assert.equal(formatCIDR(cidr(input)), want));
  }
  test('IPv4-mapped text in CIDR form stays IPv6 (128-bit prefix)', () => {
    const n = cidr('::ffff:198.19.0.0/112');
    assert.equal(n.family, 6);
    assert.equal(n.prefixLen, 112);
    assert.equal(parseCIDR('::ffff:198.19.0.0/129'), undefined);
  });
  test('keeps host bits on request', () => {
    const p = parseIPWithPrefix('198.19.90.1/24');
    assert.ok(p);
    assert.equal(formatIP(p.ip), '198.19.90.1');
    assert.equal(p.prefixLen, 24);
  });
  const bad = ['198.19.0.0/33', '198.19.0.0', '198.19.0.0/', '198.19.0.0/-1', '198.19.0.0/08', '1.2.3/8', '2001:db8::/129',
    '::1::2/64', '198.19.0.0/16/1', '198.19.0.0/ 16', '/16'];
  for (const s of bad) test(`rejects ${JSON.stringify(s)}`, () => assert.equal(parseCIDR(s), undefined));
});

describe('CIDR math', () => {
  test('contains / overlaps', () => {
    const net = cidr('198.19.0.0/16');
    assert.equal(containsIP(net, mustParseIP('198.19.255.255')), true);
    assert.equal(containsIP(net, mustParseIP('198.18.255.255')), false);
    assert.equal(containsIP(net, mustParseIP('2001:db8::1')), false);
    assert.equal(containsNet(net, cidr('198.19.90.0/24')), true);
    assert.equal(containsNet(cidr('198.19.90.0/24'), net), false);
    assert.equal(overlaps(net, cidr('198.19.90.0/24')), true);
    assert.equal(overlaps(cidr('198.19.90.0/24'), net), true);
    assert.equal(overlaps(cidr('198.19.90.0/24'), cidr('198.19.91.0/24')), false);
    assert.equal(overlaps(cidr('0.0.0.0/0'), cidr('198.19.91.0/24')), true);
    assert.equal(overlaps(cidr('2001:db8::/32'), cidr('198.19.91.0/24')), false);
  });
  test('mask / first usable / next', () => {
    assert.equal(formatCIDR(maskNet(cidr('198.19.90.0/24'), 16)), '198.19.0.0/16');
    assert.equal(formatIP(firstUsable(cidr('198.19.90.0/24'))), '198.19.90.1');
    assert.equal(formatIP(firstUsable(cidr('2001:db8:0:5a::/64'))), '2001:db8:0:5a::1');
    assert.equal(formatCIDR(nextSubnet(cidr('198.19.90.0/24')) ?? cidr('0.0.0.0/0')), '198.19.91.0/24');
    assert.equal(formatCIDR(nextSubnet(cidr('198.19.255.0/24')) ?? cidr('0.0.0.0/0')), '198.20.0.0/24');
    assert.equal(nextSubnet(cidr('255.255.255.0/24')), undefined);
    assert.equal(nextSubnet(cidr('0.0.0.0/0')), undefined);
    assert.equal(formatCIDR(nextSubnet(cidr('198.18.0.11/32')) ?? cidr('0.0.0.0/0')), '198.18.0.12/32');
    assert.equal(nextSubnet(cidr('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128')), undefined);
  });
  test('iterate and count', () => {
    const min = mustParseIP('198.19.1.0');
    const max = mustParseIP('198.19.4.0');
    assert.deepEqual([...iterateSubnets(min, max, 24)].map(formatCIDR), ['198.19.1.0/24', '198.19.2.0/24', '198.19.3.0/24', '198.19.4.0/24']);
    assert.equal(countSubnets(min, max, 24), 4n);
    assert.equal(countSubnets(max, min, 24), 0n);
    assert.equal(countSubnets(mustParseIP('198.19.0.0'), mustParseIP('198.19.0.0'), 16), 1n);
    assert.equal(countSubnets(mustParseIP('2001:db8:0:1::'), mustParseIP('2001:db8:0:ffff::'), 64), 0xffffn);
    // SubnetLen equal to the network length, /0 and /32: exactly one subnet.
    assert.deepEqual([...iterateSubnets(mustParseIP('198.19.0.0'), mustParseIP('198.19.0.0'), 16)].map(formatCIDR), ['198.19.0.0/16']);
    assert.deepEqual([...iterateSubnets(mustParseIP('0.0.0.0'), mustParseIP('0.0.0.0'), 0)].map(formatCIDR), ['0.0.0.0/0']);
    assert.deepEqual([...iterateSubnets(mustParseIP('198.18.0.11'), mustParseIP('198.18.0.12'), 32)].map(formatCIDR), ['198.18.0.11/32', '198.18.0.12/32']);
    // The last /24 of the IPv4 space ends the iteration without overflow.
    assert.deepEqual([...iterateSubnets(mustParseIP('255.255.254.0'), mustParseIP('255.255.255.0'), 24)].map(formatCIDR), ['255.255.254.0/24', '255.255.255.0/24']);
    assert.deepEqual([...iterateSubnets(mustParseIP('2001:db8::'), mustParseIP('2001:db8::1'), 128)].map(formatCIDR), ['2001:db8::/128', '2001:db8::1/128']);
  });
  test('pick: random generator chooses among the first free subnets', () => {
    const min = mustParseIP('198.19.1.0');
    const max = mustParseIP('198.19.255.0');
    const taken = [cidr('198.19.1.0/24'), cidr('198.19.3.0/24')];
    assert.equal(formatCIDR(pickFreeSubnet(min, max, 24, taken, () => 0) ?? cidr('0.0.0.0/0')), '198.19.2.0/24');
    assert.equal(formatCIDR(pickFreeSubnet(min, max, 24, taken, () => 1) ?? cidr('0.0.0.0/0')), '198.19.4.0/24');
    assert.equal(formatCIDR(pickFreeSubnet(min, max, 24, taken, (n) => n - 1) ?? cidr('0.0.0.0/0')), '198.19.102.0/24'); // 100 free: .2, .4 … .102
  });
  test('pick: a lease of another length blocks what it overlaps', () => {
    const got = pickFreeSubnet(mustParseIP('198.19.1.0'), mustParseIP('198.19.3.0'), 24, [cidr('198.19.0.0/23')], () => 0);
    assert.equal(got && formatCIDR(got), '198.19.2.0/24');
  });
  test('pick: last subnet of the range and full range', () => {
    const min = mustParseIP('198.19.0.64');
    const max = mustParseIP('198.19.0.192');
    const taken = [cidr('198.19.0.64/26'), cidr('198.19.0.128/26')];
    assert.equal(formatCIDR(pickFreeSubnet(min, max, 26, taken, () => 0) ?? cidr('0.0.0.0/0')), '198.19.0.192/26');
    assert.equal(pickFreeSubnet(min, max, 26, [...taken, cidr('198.19.0.192/26')], () => 0), undefined);
  });
  test('pick: a full /16 of /30s is answered quickly', () => {
    const taken: IPNet[] = [...iterateSubnets(mustParseIP('198.19.0.4'), mustParseIP('198.19.255.252'), 30)];
    const start = Date.now();
    assert.equal(pickFreeSubnet(mustParseIP('198.19.0.4'), mustParseIP('198.19.255.252'), 30, taken), undefined);
    assert.ok(Date.now() - start < 2000);
  });
  test('pick: IPv6', () => {
    const got = pickFreeSubnet(mustParseIP('2001:db8:0:1::'), mustParseIP('2001:db8:0:ffff::'), 64, [cidr('2001:db8:0:1::/64')], () => 0);
    assert.equal(got && formatCIDR(got), '2001:db8:0:2::/64');
  });
});
