import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { parseNetworkConfig } from '../../src/config/netconf.js';
import { formatCIDR, parseCIDR } from '../../src/ip/index.js';
import type { IPNet } from '../../src/ip/index.js';
import { setLogSink } from '../../src/log.js';
import { formatSubnetEnv, readPreviousSubnets, writeSubnetEnv } from '../../src/subnet/subnetenv.js';

const cidr = (s: string): IPNet => {
  const n = parseCIDR(s);
  assert.ok(n);
  return n;
};
const dir = mkdtempSync(join(tmpdir(), 'flannelts-subnetenv-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('subnet.env', () => {
  const v4 = parseNetworkConfig('{"Network":"198.19.0.0/16","SubnetLen":24,"Backend":{"Type":"vxlan"}}');
  test('flannel-compat §11: vxlan', () => {
    assert.equal(
      formatSubnetEnv({ config: v4, subnet: cidr('198.19.90.0/24'), mtu: 1450, ipMasq: false }),
      'FLANNEL_NETWORK=198.19.0.0/16\nFLANNEL_SUBNET=198.19.90.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n',
    );
  });
  test('udp MTU and ip-masq true', () => {
    assert.equal(
      formatSubnetEnv({ config: v4, subnet: cidr('198.19.90.0/24'), mtu: 1472, ipMasq: true }),
      'FLANNEL_NETWORK=198.19.0.0/16\nFLANNEL_SUBNET=198.19.90.1/24\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=true\n',
    );
  });
  test('dual stack order', () => {
    const ds = parseNetworkConfig('{"Network":"198.19.0.0/16","EnableIPv6":true,"IPv6Network":"2001:db8:1::/48"}');
    assert.equal(
      formatSubnetEnv({ config: ds, subnet: cidr('198.19.90.0/24'), ipv6Subnet: cidr('2001:db8:1:5a::/64'), mtu: 1450, ipMasq: false }),
      'FLANNEL_NETWORK=198.19.0.0/16\nFLANNEL_SUBNET=198.19.90.1/24\nFLANNEL_IPV6_NETWORK=2001:db8:1::/48\n' +
        'FLANNEL_IPV6_SUBNET=2001:db8:1:5a::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n',
    );
  });
  test('IPv6 only', () => {
    const v6 = parseNetworkConfig('{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"2001:db8:1::/48"}');
    assert.equal(
      formatSubnetEnv({ config: v6, ipv6Subnet: cidr('2001:db8:1:5a::/64'), mtu: 1430, ipMasq: false }),
      'FLANNEL_IPV6_NETWORK=2001:db8:1::/48\nFLANNEL_IPV6_SUBNET=2001:db8:1:5a::1/64\nFLANNEL_MTU=1430\nFLANNEL_IPMASQ=false\n',
    );
  });
  test('missing lease subnet is an error', () => {
    assert.throws(() => formatSubnetEnv({ config: v4, mtu: 1450, ipMasq: false }), /lease subnet is missing/);
  });
  test('written atomically into a new directory, read back', () => {
    const path = join(dir, 'run', 'flannel', 'subnet.env');
    writeSubnetEnv(path, { config: v4, subnet: cidr('198.19.90.0/24'), mtu: 1450, ipMasq: false });
    assert.equal(readFileSync(path, 'utf8'), 'FLANNEL_NETWORK=198.19.0.0/16\nFLANNEL_SUBNET=198.19.90.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n');
    assert.deepEqual(readdirSync(join(dir, 'run', 'flannel')), ['subnet.env'], 'no temp file left');
    writeSubnetEnv(path, { config: v4, subnet: cidr('198.19.91.0/24'), mtu: 1450, ipMasq: false });
    const prev = readPreviousSubnets(path);
    assert.equal(prev.subnet && formatCIDR(prev.subnet), '198.19.91.0/24');
    assert.equal(prev.ipv6Subnet, undefined);
  });
  test('previous IPv6 subnet is read back', () => {
    const path = join(dir, 'v6.env');
    writeFileSync(path, 'FLANNEL_IPV6_NETWORK=2001:db8:1::/48\nFLANNEL_IPV6_SUBNET=2001:db8:1:5a::1/64\nFLANNEL_MTU=1450\n');
    const prev = readPreviousSubnets(path);
    assert.equal(prev.ipv6Subnet && formatCIDR(prev.ipv6Subnet), '2001:db8:1:5a::/64');
    assert.equal(prev.subnet, undefined);
  });
  test('missing and garbled files give undefined and a log line', () => {
    const lines: string[] = [];
    const prevSink = setLogSink((l) => lines.push(l));
    try {
      assert.deepEqual(readPreviousSubnets(join(dir, 'absent.env')), {});
      const garbled = join(dir, 'garbled.env');
      writeFileSync(garbled, 'FLANNEL_SUBNET=198.19.90.1\nFLANNEL_IPV6_SUBNET=198.19.1.1/24\n\u0000\u0001junk');
      assert.deepEqual(readPreviousSubnets(garbled), {});
      assert.ok(lines.some((l) => l.includes('FLANNEL_SUBNET=198.19.90.1 is not an IPv4')));
      assert.ok(lines.some((l) => l.includes('FLANNEL_IPV6_SUBNET=198.19.1.1/24 is not an IPv6')));
      const isDir = join(dir, 'run');
      assert.deepEqual(readPreviousSubnets(isDir), {});
      assert.ok(lines.some((l) => l.includes('Could not read previous subnet file')));
    } finally {
      setLogSink(prevSink);
    }
  });
  test('temp file name is .<name> in the same dir (left behind only on failure)', () => {
    const path = join(dir, 'x', 'subnet.env');
    writeSubnetEnv(path, { config: v4, subnet: cidr('198.19.90.0/24'), mtu: 1450, ipMasq: false });
    assert.equal(existsSync(join(dir, 'x', '.subnet.env')), false);
  });
});
