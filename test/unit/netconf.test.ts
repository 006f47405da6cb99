import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatPickRange, parseNetworkConfig } from '../../src/config/netconf.js';
import { formatCIDR } from '../../src/ip/index.js';
import type { IPNet } from '../../src/ip/index.js';

const show = (n: IPNet | undefined): string | undefined => (n ? formatCIDR(n) : undefined);

describe('net-conf defaults', () => {
  test('flannel-compat §11 vector', () => {
    const c = parseNetworkConfig('{"Network":"198.19.0.0/16","SubnetLen":24,"Backend":{"Type":"vxlan"}}');
    assert.equal(formatPickRange(c), 'Picking subnet in range 198.19.1.0 ... 198.19.255.0');
    assert.equal(c.backend.type, 'vxlan');
    assert.deepEqual(c.backend.raw, { Type: 'vxlan' });
    assert.equal(c.enableIPv4, true);
    assert.equal(c.enableIPv6, false);
  });
  const lengths: Array<[string, number, string, string]> = [
    ['198.19.0.0/16', 24, '198.19.1.0/24', '198.19.255.0/24'],
    ['198.18.0.0/15', 24, '198.18.1.0/24', '198.19.255.0/24'],
    ['198.19.0.0/22', 24, '198.19.1.0/24', '198.19.3.0/24'],
    ['198.19.0.0/23', 25, '198.19.0.128/25', '198.19.1.128/25'],
    ['198.19.0.0/28', 30, '198.19.0.4/30', '198.19.0.12/30'],
    ['198.19.1.7/16', 24, '198.19.1.0/24', '198.19.255.0/24'], // host bits masked like Go's ParseCIDR
  ];
  for (const [network, len, min, max] of lengths) {
    test(`Network ${network} → SubnetLen ${len}, ${min} .. ${max}`, () => {
      const c = parseNetworkConfig(JSON.stringify({ Network: network }));
      assert.equal(c.subnetLen, len);
      assert.equal(show(c.subnetMin), min);
      assert.equal(show(c.subnetMax), max);
      assert.equal(c.backend.type, 'udp'); // absent Backend → udp
    });
  }
  test('explicit SubnetLen equal to prefix+2 and the maximum 30', () => {
    assert.equal(parseNetworkConfig('{"Network":"198.19.0.0/16","SubnetLen":18}').subnetLen, 18);
    const c = parseNetworkConfig('{"Network":"198.19.0.0/16","SubnetLen":30}');
    assert.equal(show(c.subnetMax), '198.19.255.252/30');
  });
  test('explicit SubnetMin/SubnetMax', () => {
    const c = parseNetworkConfig('{"Network":"198.19.0.0/16","SubnetMin":"198.19.10.0","SubnetMax":"198.19.20.0"}');
    assert.equal(show(c.subnetMin), '198.19.10.0/24');
    assert.equal(show(c.subnetMax), '198.19.20.0/24');
  });
  test('SubnetMin 0.0.0.0 means default, as in Go', () => {
    const c = parseNetworkConfig('{"Network":"198.19.0.0/16","SubnetMin":"0.0.0.0"}');
    assert.equal(show(c.subnetMin), '198.19.1.0/24');
  });
  test('field names are case-insensitive and unknown fields ignored, like Go', () => {
    const c = parseNetworkConfig('{"network":"198.19.0.0/16","subnetlen":26,"backend":{"type":"host-gw","x":1},"Foo":1}');
    assert.equal(c.subnetLen, 26);
    assert.equal(c.backend.type, 'host-gw');
    assert.deepEqual(c.backend.raw, { type: 'host-gw', x: 1 });
  });
  test('null fields are zero values', () => {
    const c = parseNetworkConfig('{"Network":"198.19.0.0/16","SubnetLen":null,"Backend":null}');
    assert.equal(c.subnetLen, 24);
    assert.equal(c.backend.type, 'udp');
  });
  test('IPv6 defaults', () => {
    const c = parseNetworkConfig('{"EnableIPv6":true,"Network":"198.19.0.0/16","IPv6Network":"2001:db8:1::/48"}');
    assert.equal(c.ipv6SubnetLen, 64);
    assert.equal(show(c.ipv6SubnetMin), '2001:db8:1:1::/64');
    assert.equal(show(c.ipv6SubnetMax), '2001:db8:1:ffff::/64');
    assert.equal(formatPickRange(c, 6), 'Picking ipv6 subnet in range 2001:db8:1:1:: ... 2001:db8:1:ffff::');
  });
  test('IPv6-only, small network', () => {
    const c = parseNetworkConfig('{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"2001:db8::/120"}');
    assert.equal(c.network, undefined);
    assert.equal(c.ipv6SubnetLen, 122);
    assert.equal(show(c.ipv6SubnetMin), '2001:db8::40/122');
    assert.equal(show(c.ipv6SubnetMax), '2001:db8::c0/122');
    assert.equal(parseNetworkConfig('{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"2001:db8::/62"}').ipv6SubnetLen, 64);
    assert.equal(parseNetworkConfig('{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"2001:db8::/63"}').ipv6SubnetLen, 65);
    assert.equal(parseNetworkConfig('{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"2001:db8::/64","IPv6SubnetLen":126}').ipv6SubnetLen, 126);
  });
  test('keeps the source text', () => {
    const text = '{"Network":"198.19.0.0/16"}';
    assert.equal(parseNetworkConfig(text).source, text);
  });
});

describe('net-conf rejections name field, value and rule', () => {
  const bad: Array<[string, RegExp]> = [
    ['not json', /^net-conf: invalid JSON/],
    ['[]', /must be a JSON object/],
    ['"x"', /must be a JSON object/],
    ['{}', /^net-conf: Network is missing: please define a correct Network parameter, e\.g\. "198\.19\.0\.0\/16"$/],
    ['{"Network":"0.0.0.0/0"}', /^net-conf: Network "0\.0\.0\.0\/0" is invalid: please define a correct Network/],
    ['{"Network":"198.19.0.0/33"}', /^net-conf: Network "198\.19\.0\.0\/33" is invalid: not a CIDR/],
    ['{"Network":"198.19.0.0"}', /Network "198\.19\.0\.0" is invalid: not a CIDR/],
    ['{"Network":5}', /Network 5 is invalid: must be a CIDR string/],
    ['{"Network":"2001:db8::/32"}', /Network "2001:db8::\/32" is invalid: must be an IPv4 network/],
    ['{"Network":"198.19.0.0/29"}', /Network 198\.19\.0\.0\/29 is invalid: network is too small, the prefix must be at most \/28/],
    ['{"Network":"198.19.0.0/16","SubnetLen":31}', /^net-conf: SubnetLen 31 is invalid: must be at most 30$/],
    ['{"Network":"198.19.0.0/16","SubnetLen":17}', /SubnetLen 17 is invalid: must be at least 18/],
    ['{"Network":"198.19.0.0/16","SubnetLen":"24"}', /SubnetLen "24" is invalid: must be a number/],
    ['{"Network":"198.19.0.0/16","SubnetLen":24.5}', /SubnetLen 24\.5 is invalid: must be a whole number/],
    ['{"Network":"198.19.0.0/16","SubnetLen":-1}', /SubnetLen -1 is invalid/],
    ['{"Network":"198.19.0.0/16","SubnetLen":1e300}', /SubnetLen 1e\+300 is invalid/],
    ['{"Network":"198.19.0.0/16","SubnetLen":1e400}', /SubnetLen Infinity is invalid: must be a whole number/],
    ['{"Network":"198.19.0.0/16","SubnetLen":99999999999999999999}', /SubnetLen 100000000000000000000 is invalid/],
    ['{"Network":"198.19.0.0/16","SubnetMin":"198.18.1.0"}', /SubnetMin 198\.18\.1\.0 is invalid: must lie inside Network 198\.19\.0\.0\/16/],
    ['{"Network":"198.19.0.0/16","SubnetMax":"198.20.0.0"}', /SubnetMax 198\.20\.0\.0 is invalid: must lie inside Network/],
    ['{"Network":"198.19.0.0/16","SubnetMin":"198.19.1.1"}', /SubnetMin 198\.19\.1\.1 is invalid: must be on a SubnetLen \(\/24\) boundary/],
    ['{"Network":"198.19.0.0/16","SubnetMax":"198.19.1.128"}', /SubnetMax 198\.19\.1\.128 is invalid: must be on a SubnetLen/],
    ['{"Network":"198.19.0.0/16","SubnetMin":"2001:db8::"}', /SubnetMin "2001:db8::" is invalid: must be an IPv4 address/],
    ['{"Network":"198.19.0.0/16","SubnetMin":"1.2.3"}', /SubnetMin "1\.2\.3" is invalid: not an IP address/],
    ['{"Network":"198.19.0.0/16","SubnetMin":"198.19.9.0","SubnetMax":"198.19.8.0"}', /SubnetMin 198\.19\.9\.0 is invalid: must not be after SubnetMax 198\.19\.8\.0/],
    ['{"Network":"198.19.0.0/16","EnableIPv4":"yes"}', /EnableIPv4 "yes" is invalid: must be true or false/],
    ['{"EnableIPv4":false}', /both false/],
    ['{"Network":"198.19.0.0/16","Backend":"vxlan"}', /Backend "vxlan" is invalid: must be an object/],
    ['{"Network":"198.19.0.0/16","Backend":{}}', /Backend\.Type is missing/],
    ['{"Network":"198.19.0.0/16","Backend":{"Type":1}}', /Backend\.Type 1 is invalid: must be a string/],
    ['{"Network":"198.19.0.0/16","EnableIPv6":true}', /IPv6Network is missing: please define a correct IPv6Network/],
    ['{"Network":"198.19.0.0/16","EnableIPv6":true,"IPv6Network":"198.19.0.0/16"}', /IPv6Network "198\.19\.0\.0\/16" is invalid: must be an IPv6 network/],
    ['{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"2001:db8::/125"}', /IPv6Network 2001:db8::\/125 is invalid: network is too small, the prefix must be at most \/124/],
    ['{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"2001:db8::/48","IPv6SubnetLen":127}', /IPv6SubnetLen 127 is invalid: must be at most 126/],
    ['{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"2001:db8::/48","IPv6SubnetLen":49}', /IPv6SubnetLen 49 is invalid: must be at least 50/],
    ['{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"2001:db8::/48","IPv6SubnetMin":"2001:db9::"}', /IPv6SubnetMin 2001:db9:: is invalid: must lie inside IPv6Network 2001:db8::\/48/],
    ['{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"2001:db8::/48","IPv6SubnetMax":"2001:db8:0:1::1"}', /IPv6SubnetMax 2001:db8:0:1::1 is invalid: must be on a IPv6SubnetLen \(\/64\) boundary/],
  ];
  for (const [text, want] of bad) {
    test(text, () => {
      assert.throws(() => parseNetworkConfig(text), (e: unknown) => {
        assert.ok(e instanceof Error);
        assert.match(e.message, want);
        assert.ok(!e.message.includes('\n'), 'one line');
        return true;
      });
    });
  }
});
