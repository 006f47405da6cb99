// The two flannelts extension flags of issue 29: defaults, environment, range checks, and that their
// names are not among flanneld v0.28.9's flags (so a flannel upgrade cannot give them another meaning).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FlagError, FLANNELD_FLAGS, parseFlags, toOptions } from '../../src/config/flags.js';

const opts = (argv: string[], env: NodeJS.ProcessEnv = {}) => toOptions(parseFlags(argv, env));

/** flanneld v0.28.9's own flags (main.go) and the klog flags it copies. */
const FLANNEL_V0_28_9 = [
  'etcd-endpoints', 'etcd-prefix', 'etcd-keyfile', 'etcd-certfile', 'etcd-cafile', 'etcd-username', 'etcd-password',
  'iface', 'iface-regex', 'iface-can-reach', 'subnet-file', 'public-ip', 'public-ipv6', 'subnet-lease-renew-margin',
  'ip-masq', 'ip-masq-fully-random-disable', 'kube-subnet-mgr', 'kube-api-url', 'kube-annotation-prefix',
  'kubeconfig-file', 'version', 'healthz-ip', 'healthz-port', 'iptables-resync', 'iptables-forward-rules',
  'ip-blackhole-route', 'net-config-path', 'set-node-network-unavailable', 'v', 'vmodule', 'log_backtrace_at',
];

test('-watch-liveness-seconds and -etcd-relist-seconds: defaults, flags, FLANNELD_* environment', () => {
  assert.equal(opts([]).watchLivenessSeconds, 15);
  assert.equal(opts([]).etcdRelistSeconds, 300);
  assert.equal(opts(['-watch-liveness-seconds=6', '-etcd-relist-seconds', '0']).watchLivenessSeconds, 6);
  assert.equal(opts(['-etcd-relist-seconds', '0']).etcdRelistSeconds, 0);
  assert.equal(opts([], { FLANNELD_WATCH_LIVENESS_SECONDS: '30', FLANNELD_ETCD_RELIST_SECONDS: '60' }).watchLivenessSeconds, 30);
  assert.equal(opts([], { FLANNELD_ETCD_RELIST_SECONDS: '60' }).etcdRelistSeconds, 60);
});

test('out-of-range values are one-line errors naming the flag', () => {
  assert.throws(() => opts(['-watch-liveness-seconds=2']), (e: unknown) => e instanceof FlagError && /-watch-liveness-seconds 2: must be 3 to 3600/.test(e.message));
  assert.throws(() => opts(['-etcd-relist-seconds=-1']), (e: unknown) => e instanceof FlagError && /-etcd-relist-seconds -1/.test(e.message));
});

test('the extension flags are marked as flannelts\' and do not collide with flanneld v0.28.9', () => {
  for (const name of ['watch-liveness-seconds', 'etcd-relist-seconds']) {
    const spec = FLANNELD_FLAGS.find((f) => f.name === name);
    assert.ok(spec, name);
    assert.match(spec.usage, /^flannelts: /);
    assert.equal(FLANNEL_V0_28_9.includes(name), false);
  }
});
