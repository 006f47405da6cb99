// The image's shell scripts: /usr/sbin/iptables-wrapper (legacy or nft as the host's rules are, run
// against fake xtables binaries) and /opt/bin/mk-docker-opts.sh (flannel's Docker options file).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const WRAPPER = join(root, 'deploy', 'iptables-wrapper.sh');
const MK_DOCKER_OPTS = join(root, 'deploy', 'mk-docker-opts.sh');
const tmp = mkdtempSync(join(tmpdir(), 'flannelts-deploy-scripts-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const script = (path: string, body: string): void => {
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
};

let n = 0;
/**
 * A fake /usr/sbin: xtables-{nft,legacy}-multi print the rules files a case gives (name
 * "<variant>-<iptables|ip6tables>-save[-<table>]"), the real binaries say what ran, and
 * update-alternatives (on PATH) logs its arguments or fails.
 */
function fakeHost(rules: Record<string, string>, alternativesFail = false) {
  const dir = join(tmp, String(n++));
  const sbin = join(dir, 'sbin');
  const bin = join(dir, 'bin');
  mkdirSync(sbin, { recursive: true });
  mkdirSync(bin);
  for (const [name, text] of Object.entries(rules)) writeFileSync(join(sbin, `${name}.rules`), text);
  for (const v of ['nft', 'legacy']) {
    script(join(sbin, `xtables-${v}-multi`), `f="$(dirname "$0")/${v}-$1\${3:+-$3}.rules"; [ -f "$f" ] && cat "$f"; exit 0`);
    for (const fam of ['iptables', 'ip6tables']) for (const tool of ['', '-save', '-restore']) script(join(sbin, `${fam}-${v}${tool}`), `echo "ran $(basename "$0") $*"`);
  }
  script(join(bin, 'update-alternatives'), alternativesFail ? 'exit 2' : `echo "$*" >> "${dir}/alternatives.log"`);
  const run = (as: string, ...args: string[]) => {
    const link = join(dir, as);
    if (!existsSync(link)) symlinkSync(WRAPPER, link);
    return spawnSync(link, args, { encoding: 'utf8', env: { PATH: `${bin}:/usr/bin:/bin`, IPTABLES_WRAPPER_SBIN: sbin } });
  };
  const alternatives = () => (existsSync(join(dir, 'alternatives.log')) ? readFileSync(join(dir, 'alternatives.log'), 'utf8').trim().split('\n') : []);
  return { run, alternatives, sbin };
}

const KUBELET_MANGLE = '*mangle\n:PREROUTING ACCEPT [0:0]\n:KUBE-IPTABLES-HINT - [0:0]\n:KUBE-KUBELET-CANARY - [0:0]\nCOMMIT\n';
const rulesText = (k: number) => `*filter\n:FORWARD ACCEPT [0:0]\n${Array.from({ length: k }, (_, i) => `-A FORWARD -s 198.19.${i}.0/24 -j ACCEPT`).join('\n')}\nCOMMIT\n`;

test('iptables-wrapper: no rules anywhere -> nft; the alternatives switch and the real binary runs with the arguments', () => {
  const h = fakeHost({});
  const r = h.run('iptables-restore', '--noflush', '--wait');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, 'ran iptables-nft-restore --noflush --wait\n');
  assert.deepEqual(h.alternatives(), [`--quiet --set iptables ${h.sbin}/iptables-nft`, `--quiet --set ip6tables ${h.sbin}/ip6tables-nft`]);
  assert.equal(h.run('ip6tables-save', '-t', 'nat').stdout, 'ran ip6tables-nft-save -t nat\n');
  assert.equal(h.run('iptables').stdout, 'ran iptables-nft \n');
});

test('iptables-wrapper: kubelet\'s marker chains decide first, nft before legacy', () => {
  assert.equal(fakeHost({ 'nft-iptables-save-mangle': KUBELET_MANGLE, 'legacy-iptables-save': rulesText(30) }).run('iptables-save').stdout, 'ran iptables-nft-save \n');
  assert.equal(fakeHost({ 'legacy-ip6tables-save': KUBELET_MANGLE, 'nft-iptables-save': rulesText(30) }).run('iptables-save').stdout, 'ran iptables-legacy-save \n');
});

test('iptables-wrapper: without kubelet, the variant holding more rules; a tie is nft', () => {
  assert.equal(fakeHost({ 'legacy-iptables-save': rulesText(3), 'nft-ip6tables-save': rulesText(1) }).run('iptables-restore').stdout, 'ran iptables-legacy-restore \n');
  assert.equal(fakeHost({ 'legacy-iptables-save': rulesText(2), 'nft-iptables-save': rulesText(5) }).run('iptables-restore').stdout, 'ran iptables-nft-restore \n');
  assert.equal(fakeHost({ 'legacy-iptables-save': rulesText(2), 'nft-iptables-save': rulesText(2) }).run('ip6tables').stdout, 'ran ip6tables-nft \n');
});

test('iptables-wrapper: alternatives that cannot switch (read-only root): a note, and the picked binary still runs', () => {
  const r = fakeHost({ 'legacy-iptables-save': rulesText(4) }, true).run('iptables-save', '-t', 'filter');
  assert.equal(r.status, 0);
  assert.equal(r.stdout, 'ran iptables-legacy-save -t filter\n');
  assert.match(r.stderr, /could not point the iptables alternatives at iptables-legacy/);
});

test('iptables-wrapper install registers itself for iptables and ip6tables with their -save/-restore', () => {
  const h = fakeHost({});
  const r = h.run('iptables-wrapper', 'install');
  assert.equal(r.status, 0, r.stderr);
  const log = h.alternatives();
  assert.equal(log.length, 2);
  for (const [i, fam] of ['iptables', 'ip6tables'].entries()) {
    const s = h.sbin;
    assert.equal(log[i], `--quiet --install ${s}/${fam} ${fam} ${s}/iptables-wrapper 100 --slave ${s}/${fam}-restore ${fam}-restore ${s}/iptables-wrapper --slave ${s}/${fam}-save ${fam}-save ${s}/iptables-wrapper`);
  }
  const usage = h.run('iptables-wrapper');
  assert.equal(usage.status, 2);
  assert.match(usage.stderr, /^usage: iptables-wrapper install/);
});

/** Runs mk-docker-opts.sh on a subnet.env with `lines`; returns the exit status, stderr and the written file. */
function mkDockerOpts(lines: string, args: string[], env: Record<string, string> = {}) {
  const dir = join(tmp, String(n++));
  mkdirSync(dir);
  writeFileSync(join(dir, 'subnet.env'), lines);
  const out = join(dir, 'docker_opts.env');
  const r = spawnSync('sh', [MK_DOCKER_OPTS, '-f', join(dir, 'subnet.env'), '-d', out, ...args], { encoding: 'utf8', env: { PATH: process.env.PATH, ...env } });
  return { status: r.status, stderr: r.stderr, file: existsSync(out) ? readFileSync(out, 'utf8') : undefined };
}

const SUBNET_ENV = 'FLANNEL_NETWORK=198.19.0.0/16\nFLANNEL_SUBNET=198.19.5.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n';

test('mk-docker-opts.sh: each option and the combined DOCKER_OPTS, as flannel\'s script writes them', () => {
  assert.deepEqual(mkDockerOpts(SUBNET_ENV, []), {
    status: 0,
    stderr: '',
    file: 'DOCKER_OPT_BIP="--bip=198.19.5.1/24"\nDOCKER_OPT_IPMASQ="--ip-masq=false"\nDOCKER_OPT_MTU="--mtu=1450"\nDOCKER_OPTS=" --bip=198.19.5.1/24 --ip-masq=false --mtu=1450"\n',
  });
  assert.equal(mkDockerOpts(SUBNET_ENV, ['-c']).file, 'DOCKER_OPTS=" --bip=198.19.5.1/24 --ip-masq=false --mtu=1450"\n');
  assert.equal(mkDockerOpts(SUBNET_ENV, ['-i', '-m']).file, 'DOCKER_OPT_BIP="--bip=198.19.5.1/24"\nDOCKER_OPT_MTU="--mtu=1450"\n');
  assert.equal(mkDockerOpts(SUBNET_ENV.replace('IPMASQ=true', 'IPMASQ=false'), ['-c']).file, 'DOCKER_OPTS=" --bip=198.19.5.1/24 --ip-masq=true --mtu=1450"\n');
  assert.equal(mkDockerOpts(SUBNET_ENV, ['-c', '-k', 'DOCKER_NETWORK_OPTIONS'], { DOCKER_NETWORK_OPTIONS: '--debug' }).file, 'DOCKER_NETWORK_OPTIONS="--debug  --bip=198.19.5.1/24 --ip-masq=false --mtu=1450"\n');
});

test('mk-docker-opts.sh: a bad FLANNEL_IPMASQ or -h is exit 1 with a message', () => {
  const bad = mkDockerOpts(SUBNET_ENV.replace('IPMASQ=true', 'IPMASQ=maybe'), []);
  assert.equal(bad.status, 1);
  assert.equal(bad.stderr, 'Invalid value of FLANNEL_IPMASQ: maybe\n');
  const help = mkDockerOpts(SUBNET_ENV, ['-h']);
  assert.equal(help.status, 1);
  assert.match(help.stderr, /^usage: .*mk-docker-opts\.sh \[-f FLANNEL-ENV-FILE\]/);
});
