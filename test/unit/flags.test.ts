import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FlagError, formatHelp, parseFlags, parseGoBool, parseGoInt, toOptions, unimplementedInUse, FLANNELD_FLAGS, FLANNELTS_EXTENSIONS } from '../../src/config/flags.js';

const opts = (argv: string[], env: NodeJS.ProcessEnv = {}) => toOptions(parseFlags(argv, env));

test('defaults match flanneld', () => {
  const o = opts([]);
  assert.deepEqual(o.etcdEndpoints, ['http://127.0.0.1:4001', 'http://127.0.0.1:2379']);
  assert.equal(o.etcdPrefix, '/coreos.com/network');
  assert.equal(o.subnetFile, '/run/flannel/subnet.env');
  assert.equal(o.subnetLeaseRenewMargin, 60);
  assert.equal(o.ipMasq, false);
  assert.equal(o.healthzIP, '0.0.0.0');
  assert.equal(o.healthzPort, 0);
  assert.equal(o.iptablesResync, 5);
  assert.equal(o.iptablesForwardRules, true);
  assert.equal(o.setNodeNetworkUnavailable, true);
  assert.equal(o.kubeAnnotationPrefix, 'flannel.alpha.coreos.com');
  assert.equal(o.netConfigPath, '/etc/kube-flannel/net-conf.json');
  assert.deepEqual(o.iface, []);
});

test('every Go flag syntax is accepted', () => {
  for (const argv of [['-iface=eth0'], ['-iface', 'eth0'], ['--iface=eth0'], ['--iface', 'eth0']]) {
    assert.deepEqual(opts(argv).iface, ['eth0'], argv.join(' '));
  }
  assert.equal(opts(['-ip-masq']).ipMasq, true);
  assert.equal(opts(['--ip-masq']).ipMasq, true);
  assert.equal(opts(['-ip-masq=false']).ipMasq, false);
  assert.equal(opts(['-ip-masq=0']).ipMasq, false);
  assert.equal(opts(['-iptables-forward-rules=false']).iptablesForwardRules, false);
  assert.equal(opts(['-v', '3']).verbosity, 3);
  assert.equal(opts(['-v=0x4']).verbosity, 4);
  assert.equal(opts(['-healthz-port=010']).healthzPort, 8, 'Go reads a leading 0 as octal');
});

test('list flags append; scalar flags keep the last value', () => {
  const o = opts(['-iface', 'eth0', '-iface=198.18.0.11', '-iface-regex', '^en', '-public-ip=198.18.0.1', '-public-ip=198.18.0.2']);
  assert.deepEqual(o.iface, ['eth0', '198.18.0.11']);
  assert.deepEqual(o.ifaceRegex, ['^en']);
  assert.equal(o.publicIP, '198.18.0.2');
});

test('FLANNELD_* environment fills flags not given on the command line; the flag wins', () => {
  const env = {
    FLANNELD_IFACE: 'eth1,eth2',
    FLANNELD_IP_MASQ: 'true',
    FLANNELD_ETCD_ENDPOINTS: 'http://127.0.0.1:23790',
    FLANNELD_SUBNET_LEASE_RENEW_MARGIN: '30',
    FLANNELD_PUBLIC_IP: '198.18.0.9',
  };
  const o = opts(['-public-ip=198.18.0.10'], env);
  assert.deepEqual(o.iface, ['eth1', 'eth2']);
  assert.equal(o.ipMasq, true);
  assert.deepEqual(o.etcdEndpoints, ['http://127.0.0.1:23790']);
  assert.equal(o.subnetLeaseRenewMargin, 30);
  assert.equal(o.publicIP, '198.18.0.10');
  const p = parseFlags(['-public-ip=198.18.0.10'], env);
  assert.equal(p.source.get('public-ip'), 'flag');
  assert.equal(p.source.get('ip-masq'), 'env');
});

test('errors are one line, name the flag and carry exit code 2', () => {
  const cases: Array<[string[], NodeJS.ProcessEnv, RegExp]> = [
    [['-no-such-flag'], {}, /flag provided but not defined: -no-such-flag/],
    [['-iface'], {}, /flag needs an argument: -iface/],
    [['-ip-masq=maybe'], {}, /invalid boolean value "maybe" for flag -ip-masq/],
    [['-healthz-port=abc'], {}, /invalid integer value "abc" for flag -healthz-port/],
    [['-healthz-port=70000'], {}, /-healthz-port 70000/],
    [['-subnet-lease-renew-margin=0'], {}, /between 1 and 1439/],
    [['-subnet-lease-renew-margin=1440'], {}, /between 1 and 1439/],
    [['-iface-regex=(['], {}, /invalid -iface-regex/],
    [['eth0'], {}, /unexpected argument "eth0"/],
    [['---iface=x'], {}, /bad flag syntax/],
    [['-log-format=xml'], {}, /-log-format "xml"/],
  ];
  for (const [argv, env, re] of cases) {
    assert.throws(
      () => opts(argv, env),
      (e: unknown) => e instanceof FlagError && e.exitCode === 2 && re.test(e.message) && !e.message.includes('\n'),
      argv.join(' '),
    );
  }
});

test('a bare boolean does not swallow the next argument (Go semantics)', () => {
  assert.throws(() => opts(['-ip-masq', 'false']), /unexpected argument "false"/);
});

test('"--" ends flag parsing', () => {
  assert.throws(() => opts(['-ip-masq', '--', '-iface=x']), /unexpected argument "-iface=x"/);
});

test('--help lists every flag with its default and env variable', () => {
  const help = formatHelp('flanneld');
  for (const f of FLANNELD_FLAGS) assert.ok(help.includes(`  -${f.name}`), f.name);
  assert.match(help, /-etcd-prefix string\n\s+\tetcd prefix \(default "\/coreos.com\/network"\) \[env FLANNELD_ETCD_PREFIX\]/);
  assert.match(help, /-iptables-forward-rules\n.*\(default true\)/);
  assert.ok(parseFlags(['--help']).help);
  assert.ok(parseFlags(['-h']).help);
});

test('Go ParseBool and ParseInt edge cases', () => {
  assert.equal(parseGoBool('T'), true);
  assert.equal(parseGoBool('False'), false);
  assert.equal(parseGoBool('yes'), undefined);
  assert.equal(parseGoInt('-12'), -12);
  assert.equal(parseGoInt('1_000'), 1000);
  assert.equal(parseGoInt('0b101'), 5);
  assert.equal(parseGoInt('0o17'), 15);
  assert.equal(parseGoInt('1e3'), undefined);
  assert.equal(parseGoInt(''), undefined);
  assert.equal(parseGoInt('99999999999999999999'), undefined);
});

test('flags parsed but not implemented are reported', () => {
  const u = unimplementedInUse(parseFlags(['-kube-subnet-mgr', '-kube-api-url=http://198.18.0.1:6443', '-net-config-path=/x', '-ip-masq', '-iptables-resync=9', '-vmodule=x=2']));
  // The kube and iptables flags are implemented: neither refused nor announced.
  assert.deepEqual(u.fatal, []);
  assert.deepEqual(u.warn.filter((f) => /kube|net-config|set-node|ip-masq|iptables/.test(f)), []);
  assert.ok(u.warn.includes('-vmodule'));
  // The fatal mechanism itself, with a table that marks a flag so.
  const specs = [{ name: 'future', kind: 'bool' as const, def: false, usage: '', notImplemented: 'fatal' as const }];
  assert.deepEqual(unimplementedInUse(parseFlags(['-future'], {}, specs), specs).fatal, ['-future']);
  const none = unimplementedInUse(parseFlags(['-iptables-forward-rules=false']));
  assert.deepEqual(none.fatal, []);
  assert.ok(!none.warn.includes('-iptables-forward-rules'));
});

interface FlannelFlag {
  name: string;
  type: 'string' | 'bool' | 'int' | 'list';
  default: string;
}
const fixture = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'test', 'fixtures', 'flannel-v0.28.9-flags.json');
const flannelFlags = (JSON.parse(readFileSync(fixture, 'utf8')) as { flags: FlannelFlag[] }).flags;

/** Our default as Go's flag package would print it (its DefValue). */
function goDefault(def: string | boolean | number | readonly string[]): string {
  return Array.isArray(def) ? `[${def.join(' ')}]` : String(def);
}

test('every flag of flanneld v0.28.9 (and the klog flags it copies) exists with the same type and default', () => {
  const ours = new Map(FLANNELD_FLAGS.map((f) => [f.name, f]));
  for (const f of flannelFlags) {
    const o = ours.get(f.name);
    assert.ok(o, `flannel's -${f.name} is missing`);
    assert.equal(o.kind, f.type, `-${f.name} type`);
    assert.equal(goDefault(o.def), f.default, `-${f.name} default`);
  }
  // In flannel's order, so --help reads like flanneld's.
  assert.deepEqual(FLANNELD_FLAGS.slice(0, flannelFlags.length).map((f) => f.name), flannelFlags.map((f) => f.name));
});

test('our own flags are exactly the listed flannelts extensions (a new flannel flag makes this fail)', () => {
  const flannel = new Set(flannelFlags.map((f) => f.name));
  const extra = FLANNELD_FLAGS.map((f) => f.name).filter((n) => !flannel.has(n));
  assert.deepEqual(extra, [...FLANNELTS_EXTENSIONS]);
  assert.deepEqual(FLANNELTS_EXTENSIONS, ['subnet-store-dir', 'log-format', 'status-socket', 'udp-offload', 'udp-reply-poll-us', 'udp-threads', 'vxlan-userspace', 'br-netfilter-check', 'wireguard-userspace', 'watch-liveness-seconds', 'etcd-relist-seconds']);
  for (const n of extra) assert.match(FLANNELD_FLAGS.find((f) => f.name === n)!.usage, /^flannelts: /, `-${n} says it is ours`);
});

test('-ip-blackhole-route and the klog flags come from FLANNELD_* too', () => {
  const o = opts([], { FLANNELD_IP_BLACKHOLE_ROUTE: 'true', FLANNELD_V: '4' });
  assert.equal(o.ipBlackholeRoute, true);
  assert.equal(o.verbosity, 4);
  assert.equal(opts(['-ip-blackhole-route']).ipBlackholeRoute, true);
  assert.equal(opts([]).ipBlackholeRoute, false);
  const p = parseFlags([], { FLANNELD_VMODULE: 'x=2', FLANNELD_LOG_BACKTRACE_AT: 'main.go:10' });
  assert.equal(p.values.get('vmodule'), 'x=2');
  assert.equal(p.values.get('log_backtrace_at'), 'main.go:10');
});

test('a bad FLANNELD_* value is reported naming the variable and ignored; empty variables are ignored (flannel\'s SetFlagsFromEnv)', () => {
  const p = parseFlags([], { FLANNELD_IP_MASQ: 'yes please', FLANNELD_HEALTHZ_PORT: '80', FLANNELD_ETCD_ENDPOINTS: '', FLANNELD_SUBNET_LEASE_RENEW_MARGIN: '5000' });
  const o = toOptions(p);
  assert.equal(o.ipMasq, false);
  assert.equal(o.healthzPort, 80);
  assert.deepEqual(o.etcdEndpoints, ['http://127.0.0.1:4001', 'http://127.0.0.1:2379']);
  assert.equal(o.subnetLeaseRenewMargin, 60);
  assert.equal(p.envErrors.length, 2);
  assert.match(p.envErrors[0]!, /invalid boolean value "yes please" for environment variable FLANNELD_IP_MASQ.*FLANNELD_IP_MASQ is ignored, -ip-masq keeps false/);
  assert.match(p.envErrors[1]!, /invalid -subnet-lease-renew-margin 5000.*FLANNELD_SUBNET_LEASE_RENEW_MARGIN is ignored, -subnet-lease-renew-margin keeps 60/);
  // The same value on the command line is an error (exit 2).
  assert.throws(() => opts(['-subnet-lease-renew-margin=5000']), FlagError);
  // FLANNELD_VERSION: flannel reads -version before the environment, so it never applies.
  assert.equal(opts([], { FLANNELD_VERSION: 'true' }).version, false);
  assert.equal(opts(['-version']).version, true);
});
