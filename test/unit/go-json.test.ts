// Go's encoding/json key rules (util/go-json.ts) and every reader of flannel's JSON that goes through
// them: net-conf, the udp and vxlan Backend options, lease attributes (etcd and the file store), a
// peer's vxlan BackendData, node annotations. Each reader: other key cases work, and duplicates resolve
// as Go resolves them (the last member in the text wins, whatever its spelling).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { foldName, goField, goFields, GoJSONError, parseGoJSON } from '../../src/util/go-json.js';
import { parseNetworkConfig } from '../../src/config/netconf.js';
import { parseUdpOptions } from '../../src/backend/udp.js';
import { decodeVxlanBackendData, parseVxlanOptions } from '../../src/backend/vxlan/vxlan-options.js';
import { parseOffload } from '../../src/backend/tun/data-plane.js';
import { decodeLeaseAttrs } from '../../src/subnet/lease.js';
import { decodeLeaseFile } from '../../src/subnet/file/lease-file.js';
import { annotationNames, nodeToLease } from '../../src/subnet/kube/annotations.js';
import { formatCIDR, formatIP } from '../../src/ip/index.js';

const backend = (json: string): Record<string, unknown> => parseNetworkConfig(`{"Network":"198.19.0.0/16","Backend":${json}}`).backend.raw;

test('parser: duplicates are ordered by their last occurrence, so the last member wins whatever its spelling', () => {
  const o = parseGoJSON('{"Port":1,"port":2,"Port":3}') as Record<string, unknown>;
  // JSON.parse would keep "Port" first and make "port" (2) the last match; Go's answer is 3.
  assert.deepEqual(Object.keys(o), ['port', 'Port']);
  assert.equal(goField(o, 'Port'), 3);
  assert.equal(goField(parseGoJSON('{"Port":1,"port":2}') as Record<string, unknown>, 'Port'), 2);
  assert.equal(goField(parseGoJSON('{"port":2,"Port":1}') as Record<string, unknown>, 'Port'), 1);
  assert.equal(goField(parseGoJSON('{"PORT":7}') as Record<string, unknown>, 'Port'), 7);
  assert.equal(goField(parseGoJSON('{"Ports":7}') as Record<string, unknown>, 'Port'), undefined);
});

test('parser: accepts what JSON.parse accepts, with the same values, and rejects the same garbage', () => {
  const ok = ['{}', '[]', ' {"a" : [1, -2.5e3, true, false, null, "x\\u00e9\\n"], "b": {"c": {}}} ', '"s"', '0', '-0.5E+2', '[[[]]]'];
  for (const t of ok) assert.deepEqual(parseGoJSON(t), JSON.parse(t), t);
  const bad = ['', '{', '{"a":1,}', '[1,]', '{"a" 1}', '{a:1}', '01', '1.', '.5', '+1', 'tru', 'nul', '"\\x"', '"a\u0001"', '{"a":1} x', "{'a':1}", '[1 2]', 'NaN', '"unterminated'];
  for (const t of bad) {
    assert.throws(() => JSON.parse(t), SyntaxError, `JSON.parse accepts ${t}`);
    assert.throws(() => parseGoJSON(t), GoJSONError, t);
  }
});

test('parser: "__proto__" is an ordinary key, and nesting is limited to Go\'s 10000 levels without a stack overflow', () => {
  const o = parseGoJSON('{"__proto__":{"polluted":true}}') as Record<string, unknown>;
  assert.equal(Object.getPrototypeOf(o), Object.prototype);
  assert.deepEqual(Object.keys(o), ['__proto__']);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  let depth = 0;
  for (let v = parseGoJSON('['.repeat(10_000) + ']'.repeat(10_000)); Array.isArray(v); v = v[0]) depth++;
  assert.equal(depth, 10_000);
  assert.throws(() => parseGoJSON('['.repeat(10_001) + ']'.repeat(10_001)), /exceeded max depth/);
  assert.throws(() => parseGoJSON('{"a":'.repeat(200_000)), /exceeded max depth/);
});

test('fields: exact name first, else the first field that folds equal; Kelvin sign and long s fold like Go', () => {
  assert.equal(foldName('vtepMac'), 'VTEPMAC');
  assert.equal(goField({ '\u212ani': 5 }, 'Kni'), 5); // KELVIN SIGN folds with K and k
  assert.equal(goField({ 'e\u017fs': 5 }, 'ESS'), 5); // LONG S folds with S and s
  assert.equal(goField({ '\u0131d': 5 }, 'ID'), undefined); // dotless i does not fold onto I
  assert.equal(goField({ 'Stra\u00dfe': 5 }, 'STRASSE'), undefined);
  // Two fields folding to one name (Go: exact match, else declaration order): "port" goes to "Port".
  const m = goFields({ port: 1, PORT: 2 }, ['Port', 'PORT']);
  assert.deepEqual([...m], [['Port', 1], ['PORT', 2]]);
  // null: no effect on a value field, clears a pointer / RawMessage field.
  assert.deepEqual([...goFields({ A: 1, a: null, B: 2, b: null }, ['A', 'B'], ['B'])], [['A', 1]]);
});

test('reader net-conf: lower-case and mixed keys, duplicates resolved as Go does, Backend as a raw message', () => {
  const c = parseNetworkConfig('{"network":"198.18.0.0/16","NETWORK":"198.19.0.0/16","subnetlen":26,"enablenftables":true,"backend":{"type":"vxlan"}}');
  assert.equal(formatCIDR(c.network!), '198.19.0.0/16');
  assert.equal(c.subnetLen, 26);
  assert.equal(c.enableNFTables, true);
  assert.equal(c.backend.type, 'vxlan');
  // The later Backend replaces the earlier one wholesale (json.RawMessage), its Type too.
  assert.throws(() => parseNetworkConfig('{"Network":"198.19.0.0/16","Backend":{"Type":"vxlan"},"backend":{"Port":9}}'), /Backend.Type is missing/);
  assert.equal(parseNetworkConfig('{"Network":"198.19.0.0/16","SubnetLen":26,"subnetLen":null}').subnetLen, 26);
  assert.equal(parseNetworkConfig('{"Network":"198.19.0.0/16","Backend":{"Type":"vxlan","TYPE":"host-gw"}}').backend.type, 'host-gw');
});

test('reader udp Backend options: "port" is Port (was ignored before), last duplicate wins', () => {
  assert.equal(parseUdpOptions(backend('{"Type":"udp","port":8290}')).port, 8290);
  assert.equal(parseUdpOptions(backend('{"Type":"udp","Port":1,"port":8291}')).port, 8291);
  assert.equal(parseUdpOptions(backend('{"Type":"udp","port":8291,"Port":8292}')).port, 8292);
  assert.equal(parseUdpOptions(backend('{"Type":"udp","allowunknownsource":true}')).allowUnknownSource, true);
  assert.throws(() => parseUdpOptions(backend('{"Type":"udp","port":"8290"}')), /Backend.Port "8290" is invalid/);
});

test('reader vxlan Backend options: every key in any case, duplicates resolved as Go does', () => {
  const o = parseVxlanOptions(backend('{"type":"vxlan","vni":7,"VNI":8,"PORT":4789,"gbp":true,"Learning":true,"directrouting":true,"mtu":1400,"DirectRouting":false}'));
  assert.deepEqual([o.vni, o.port, o.gbp, o.learning, o.directRouting, o.mtu], [8, 4789, true, true, false, 1400]);
  assert.equal(parseVxlanOptions(backend('{"Type":"vxlan","VNI":8,"vni":9}')).vni, 9);
  assert.deepEqual(parseOffload({ tso: false, UDPgro: false }), { tso: false, udpGro: false });
  assert.throws(() => parseOffload({ TSO: false, bogus: true }), /Backend.Offload/);
});

test('reader lease attributes (etcd value and file store): any key case, last duplicate wins, null clears a pointer', () => {
  const a = decodeLeaseAttrs('{"publicip":"198.18.0.9","PublicIP":"198.18.0.11","backendtype":"vxlan","backenddata":{"vni":1,"vtepmac":"aa:bb:cc:dd:ee:01"},"PublicIPv6":"2001:db8::b","publicIPv6":null}');
  assert.equal(formatIP(a.publicIP!), '198.18.0.11');
  assert.equal(a.backendType, 'vxlan');
  assert.equal(a.publicIPv6, undefined);
  assert.deepEqual(decodeVxlanBackendData(a.backendData), { ok: true, vni: 1, mac: 'aa:bb:cc:dd:ee:01' });
  const f = decodeLeaseFile('198.19.5.0-24', '{"PublicIP":"198.18.0.12","BackendType":"udp","expiration":"2020-01-01T00:00:00Z","Expiration":"2030-01-01T00:00:00.000Z"}');
  assert.equal(f.expiration.toISOString(), '2030-01-01T00:00:00.000Z');
});

test('reader peer vxlan BackendData: VtepMAC in any case, the last one wins', () => {
  const d = decodeVxlanBackendData(parseGoJSON('{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:01","vtepmac":"aa:bb:cc:dd:ee:02"}'));
  assert.deepEqual(d, { ok: true, vni: 1, mac: 'aa:bb:cc:dd:ee:02' });
});

test('reader node annotations: backend-data decoded with Go keys (lower case, duplicates)', () => {
  const names = annotationNames();
  const lease = nodeToLease(
    {
      metadata: {
        name: 'n2',
        annotations: {
          [names.kubeSubnetManager]: 'true',
          [names.backendType]: 'vxlan',
          [names.publicIP]: '198.18.0.12',
          [names.backendData]: '{"vni":1,"VtepMAC":"aa:bb:cc:dd:ee:01","vtepMAC":"aa:bb:cc:dd:ee:03"}',
        },
      },
      spec: { podCIDR: '198.19.2.0/24' },
    },
    names,
    { enableIPv4: true, enableIPv6: false },
    new Date(Date.now() + 60_000),
  );
  assert.deepEqual(decodeVxlanBackendData(lease.attrs.backendData), { ok: true, vni: 1, mac: 'aa:bb:cc:dd:ee:03' });
});
