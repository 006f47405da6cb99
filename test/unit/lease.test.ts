import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatCIDR, mustParseIP, parseCIDR } from '../../src/ip/index.js';
import type { IPNet } from '../../src/ip/index.js';
import {
  decodeLeaseAttrs,
  describeSubnets,
  encodeLeaseAttrs,
  LeaseFormatError,
  makeSubnetKey,
  parseSubnetKey,
  subnetKeyPath,
} from '../../src/subnet/lease.js';

const cidr = (s: string): IPNet => {
  const n = parseCIDR(s);
  assert.ok(n);
  return n;
};

describe('subnet keys', () => {
  test('flannel-compat §11 key', () => {
    assert.equal(subnetKeyPath('/coreos.com/network', cidr('198.19.90.0/24')), '/coreos.com/network/subnets/198.19.90.0-24');
    assert.equal(subnetKeyPath('/coreos.com/network/', cidr('198.19.90.0/24')), '/coreos.com/network/subnets/198.19.90.0-24');
  });
  test('dual stack and IPv6-only keys', () => {
    assert.equal(makeSubnetKey(cidr('198.19.90.0/24'), cidr('2001:db8:1:5a::/64')), '198.19.90.0-24&2001:db8:1:5a::-64');
    assert.equal(makeSubnetKey(undefined, cidr('2001:db8:1:5a::/64')), '0.0.0.0-0&2001:db8:1:5a::-64');
  });
  const parses: Array<[string, string | undefined, string | undefined]> = [
    ['198.19.90.0-24', '198.19.90.0/24', undefined],
    ['/coreos.com/network/subnets/198.19.90.0-24', '198.19.90.0/24', undefined],
    ['198.19.90.0-24&2001:db8:1:5a::-64', '198.19.90.0/24', '2001:db8:1:5a::/64'],
    ['0.0.0.0-0&2001:db8:1:5a::-64', undefined, '2001:db8:1:5a::/64'],
  ];
  for (const [key, v4, v6] of parses) {
    test(`parse ${key}`, () => {
      const p = parseSubnetKey(key);
      assert.ok(p);
      assert.equal(p.subnet && formatCIDR(p.subnet), v4);
      assert.equal(p.ipv6Subnet && formatCIDR(p.ipv6Subnet), v6);
    });
  }
  for (const key of ['config', '198.19.90.0', '198.19.90.0-33', '198.19.90.1-24', '300.19.90.0-24', '198.19.90.0-24&zz::-64',
    '198.19.90.0-24&2001:db8::-129', '0.0.0.0-0', '198.19.90.0-24 ', '198.19.90.0-024x']) {
    test(`reject ${JSON.stringify(key)}`, () => assert.equal(parseSubnetKey(key), undefined));
  }
  test('round trip', () => {
    const key = makeSubnetKey(cidr('198.19.0.4/30'), cidr('2001:db8::40/122'));
    const p = parseSubnetKey(key);
    assert.equal(p?.subnet && formatCIDR(p.subnet), '198.19.0.4/30');
    assert.equal(p?.ipv6Subnet && formatCIDR(p.ipv6Subnet), '2001:db8::40/122');
  });
  test('log form', () => assert.equal(describeSubnets(cidr('198.19.90.0/24'), undefined), 'ip: 198.19.90.0/24 ipv6: ::/0'));
});

describe('lease JSON', () => {
  const vxlan = '{"PublicIP":"198.18.0.11","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"d2:5e:7f:06:2e:52"}}';
  test('flannel-compat §4 vxlan value encodes byte-exactly', () => {
    assert.equal(
      encodeLeaseAttrs({ publicIP: mustParseIP('198.18.0.11'), backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: 'd2:5e:7f:06:2e:52' } }),
      vxlan,
    );
  });
  test('udp: BackendData omitted', () => {
    assert.equal(encodeLeaseAttrs({ publicIP: mustParseIP('198.18.0.11'), backendType: 'udp' }), '{"PublicIP":"198.18.0.11","PublicIPv6":null,"BackendType":"udp"}');
  });
  test('dual stack', () => {
    const text = '{"PublicIP":"198.18.0.11","PublicIPv6":"2001:db8::11","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"d2:5e:7f:06:2e:52"},"BackendV6Data":{"VNI":1,"VtepMAC":"d2:5e:7f:06:2e:53"}}';
    const attrs = decodeLeaseAttrs(text);
    assert.equal(attrs.publicIPv6 && attrs.publicIPv6.family, 6);
    assert.equal(encodeLeaseAttrs(attrs), text);
  });
  test('decode round trip of the literal', () => {
    const attrs = decodeLeaseAttrs(vxlan);
    assert.equal(attrs.backendType, 'vxlan');
    assert.deepEqual(attrs.backendData, { VNI: 1, VtepMAC: 'd2:5e:7f:06:2e:52' });
    assert.equal(attrs.publicIP?.value, mustParseIP('198.18.0.11').value);
    assert.equal(encodeLeaseAttrs(attrs), vxlan);
  });
  test('decode tolerates Go spellings: field case, whitespace, unknown fields', () => {
    const attrs = decodeLeaseAttrs('{ "publicip": "198.18.0.12", "BackendType": "host-gw", "Extra": 1 }');
    assert.equal(encodeLeaseAttrs(attrs), '{"PublicIP":"198.18.0.12","PublicIPv6":null,"BackendType":"host-gw"}');
  });
  const garbage = ['', '{', 'null', '[]', '"x"', '{"PublicIP":5}', '{"PublicIP":"2001:db8::1"}', '{"PublicIP":"1.2.3"}',
    '{"PublicIPv6":"198.18.0.1"}', '{"BackendType":7}'];
  for (const text of garbage) {
    test(`malformed ${JSON.stringify(text)} → LeaseFormatError`, () => {
      assert.throws(() => decodeLeaseAttrs(text), (e: unknown) => e instanceof LeaseFormatError);
    });
  }
});
