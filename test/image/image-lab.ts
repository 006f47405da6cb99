// The image's programs at work, driven by deploy/test-image.sh (which builds and mounts the image and
// writes `image-run`, running a program of the image as a container would):
//   node image-lab.js <image-run> <image mount> <work dir under /tmp>
// A 2-node lab on a real etcd whose daemons are the image's /opt/bin/flanneld (pod-to-pod traffic,
// /readyz, the node flags, the iptables variant the image's wrapper picked), then install-conf, cp and
// mk-docker-opts.sh of the image. Prints one "ok" line per check; exit 1 on the first failure. The lab
// is taken down (daemons by PID, namespaces) also on failure or SIGTERM.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Lab, type LabNode } from '../../src/lab/lab.js';
import { isAlive } from '../../src/util/process.js';
import { FLANNELD_NODE_FLAGS } from '../../src/config/node-flags.js';

const [runner, mnt, work] = process.argv.slice(2) as [string, string, string];
const ok = (what: string): void => void process.stdout.write(`ok - ${what}\n`);
const image = (args: string[], opts: { netns?: LabNode } = {}) =>
  opts.netns
    ? spawnSync('ip', ['netns', 'exec', opts.netns.ns.name, runner, ...args], { encoding: 'utf8', timeout: 60_000 })
    : spawnSync(runner, args, { encoding: 'utf8', timeout: 60_000 });

function checkContents(): void {
  // Absolute symlinks resolve inside the image, not on this host.
  const inImage = (p: string): string => {
    const full = join(mnt, p);
    return lstatSync(full).isSymbolicLink() ? inImage(readlinkSync(full)) : full;
  };
  for (const p of ['/opt/bin/flanneld', '/opt/bin/install-conf', '/opt/bin/mk-docker-opts.sh']) assert.ok(statSync(inImage(p)).mode & 0o111, `${p} is executable`);
  assert.equal(readlinkSync(join(mnt, 'opt/bin/flanneld')), '/opt/flannelts/dist/src/cli/flanneld.js');
  assert.match(readFileSync(inImage('/opt/bin/flanneld'), 'utf8').split('\n')[0]!, new RegExp(`^#!/usr/bin/env -S node ${FLANNELD_NODE_FLAGS.join(' ')}$`));
  for (const b of ['iptables-legacy', 'iptables-nft', 'ip6tables-legacy', 'ip6tables-nft', 'nft', 'ip', 'wg', 'iptables-wrapper']) {
    assert.ok(existsSync(join(mnt, 'usr/sbin', b)) || existsSync(join(mnt, 'usr/bin', b)) || existsSync(join(mnt, 'sbin', b)), `${b} in the image`);
  }
  assert.ok(existsSync(join(mnt, 'usr/bin/cp')), 'cp for older manifests');
  assert.ok(statSync(join(mnt, 'etc/ssl/certs/ca-certificates.crt')).size > 10_000, 'CA certificates (etcd over TLS)');
  for (const s of ['usr/sbin/ipsec', 'usr/lib/ipsec', 'usr/sbin/swanctl', 'usr/sbin/charon-systemd']) assert.ok(!existsSync(join(mnt, s)), `no strongswan (${s})`);
  assert.equal(readlinkSync(join(mnt, 'etc/alternatives/iptables')), '/usr/sbin/iptables-wrapper', 'iptables goes through the wrapper until it picks');
  ok('image contents: /opt/bin/{flanneld,install-conf,mk-docker-opts.sh}, iptables legacy+nft behind the wrapper, nft, ip, wg, cp, CA certificates, no strongswan');
}

function checkInstallConf(): void {
  const dir = join(work, 'cni');
  mkdirSync(join(dir, 'net.d'), { recursive: true });
  const src = join(dir, 'cni-conf.json');
  const dest = join(dir, 'net.d', '10-flannel.conflist');
  writeFileSync(src, '{"name":"cbr0","cniVersion":"0.3.1","plugins":[{"type":"flannel","delegate":{"hairpinMode":true,"isDefaultGateway":true}}]}\n');
  chmodSync(src, 0o644);
  const usage = image(['/opt/bin/install-conf', src]);
  assert.equal(usage.status, 1, usage.stderr);
  assert.equal(usage.stderr, 'usage: install-conf <src> <dest>\n');
  const r = image(['/opt/bin/install-conf', src, dest]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(readFileSync(dest, 'utf8'), readFileSync(src, 'utf8'));
  assert.equal(statSync(dest).mode & 0o777, 0o644);
  const missing = image(['/opt/bin/install-conf', `${src}.missing`, dest]);
  assert.equal(missing.status, 1);
  assert.equal(missing.stderr.trimEnd().split('\n').length, 1, missing.stderr);
  assert.ok(missing.stderr.includes(`${src}.missing`), missing.stderr);
  assert.equal(readFileSync(dest, 'utf8'), readFileSync(src, 'utf8'), 'target untouched');
  const cp = image(['cp', '-f', src, join(dir, 'net.d', 'cp.conflist')]);
  assert.equal(cp.status, 0, cp.stderr);
  ok('install-conf: usage and exit 1, the copy with the source mode, a missing source named in one line with the target untouched; cp -f');
  const bad = image(['/opt/bin/flanneld', '-no-such-flag']);
  assert.equal(bad.status, 2, bad.stderr);
  assert.match(bad.stderr, /flag provided but not defined: -no-such-flag/);
  ok('the image\'s flanneld refuses an unknown flag: exit 2 naming it');
}

async function readyz(node: LabNode): Promise<string> {
  const script = "fetch('http://127.0.0.1:8081/readyz').then(async r=>process.stdout.write(r.status+' '+await r.text()))";
  return node.ns.exec(process.execPath, ['-e', script], { timeoutMs: 10_000 });
}

async function checkLab(lab: Lab): Promise<void> {
  await lab.up();
  ok(`lab up: 2 nodes, etcd, every daemon the image's /opt/bin/flanneld (${lab.set.prefix})`);
  const results = await lab.checkAllPairs(3);
  assert.deepEqual(results.filter((r) => !r.ok), []);
  assert.equal(results.length, 2);
  ok(`pod-to-pod traffic both ways over the image's daemons (${results.map((r) => `${r.from}->${r.to} ${r.detail}`).join(', ')})`);
  for (const node of lab.nodes) {
    const argv = readFileSync(`/proc/${node.pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    assert.deepEqual(argv.slice(1, 1 + FLANNELD_NODE_FLAGS.length), [...FLANNELD_NODE_FLAGS], argv.join(' '));
    assert.deepEqual([argv[0], argv[1 + FLANNELD_NODE_FLAGS.length]], ['node', '/opt/bin/flanneld'], 'node (from the image\'s PATH) running /opt/bin/flanneld');
    assert.equal(await readyz(node), '200 flanneld is ready');
    assert.equal(readlinkSync(`/proc/${node.pid}/root/etc/alternatives/iptables`), '/usr/sbin/iptables-nft', 'the wrapper picked nft (no rules in the namespace) and switched');
    const nft = node.ns.exec('iptables-nft-save', ['-t', 'nat']);
    assert.match(nft, /-A FLANNEL-POSTRTG .*-j MASQUERADE/);
    assert.doesNotMatch(node.ns.exec('iptables-legacy-save', []), /FLANNEL/);
    const opts = join(work, `docker-opts-${node.name}.env`);
    const mk = image(['/opt/bin/mk-docker-opts.sh', '-f', join(node.dir, 'subnet.env'), '-d', opts], { netns: node });
    assert.equal(mk.status, 0, mk.stderr);
    assert.match(readFileSync(opts, 'utf8'), new RegExp(`^DOCKER_OPTS=" --bip=${node.subnetEnv.FLANNEL_SUBNET!.replace(/\./g, '\\.')} --ip-masq=false --mtu=\\d+"$`, 'm'));
  }
  ok('each daemon: node run with the flags of node-flags.ts, /readyz 200, masquerade rules in iptables-nft (the wrapper\'s pick), none in legacy; mk-docker-opts.sh on its subnet.env');
}

async function main(): Promise<number> {
  checkContents();
  checkInstallConf();
  const lab = new Lab({ nodes: 2, backend: 'vxlan', ipv6: false, store: 'etcd', flanneld: [runner, '/opt/bin/flanneld'], daemonArgs: ['-ip-masq', '-healthz-port=8081'], startTimeoutSec: 60 });
  let down: Promise<void> | undefined;
  const takeDown = async (): Promise<void> => {
    down ??= (async () => {
      const pids = lab.nodes.map((n) => n.pid).filter((p): p is number => p !== undefined);
      await lab.down();
      for (const pid of pids) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    })();
    return down;
  };
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => void takeDown().then(() => process.exit(1)));
  try {
    await checkLab(lab);
  } catch (e) {
    for (const n of lab.nodes) process.stderr.write(`--- ${n.name} flanneld log ---\n${lab.daemonLog(n, 30)}\n`);
    throw e;
  } finally {
    await takeDown();
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`not ok - ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  },
);
