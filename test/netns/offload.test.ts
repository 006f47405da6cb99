// 1 GB each way, at the same time, through two real flanneld processes with the udp backend: once
// with every offload (TSO/USO from the TUN, userspace GSO + UDP_SEGMENT, UDP_GRO + userspace GRO
// back into the TUN) and once with -udp-offload=false. Content checked end to end with sha256
// (test/fixtures/tcp-check), IPv4 one way and IPv6 the other, so both TCPV4 and TCPV6 paths run.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawn } from 'node:child_process';
import { Lab, type LabNode } from '../../src/lab/lab.js';
import { rootAndNetns, suiteNeeds, need } from '../helpers/prereq.js';

const here = dirname(fileURLToPath(import.meta.url));
const tcpCheck = join(here, '..', 'fixtures', 'tcp-check.js');
const GB = 1 << 30;

interface SendResult {
  ok: boolean;
  bytes: number;
  ms: number;
}

/** tcp-check send from one pod, asynchronously (both directions must run at once). */
function send(lab: Lab, from: LabNode, target: string, port: number, bytes: number): Promise<SendResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', from.pod.name, process.execPath, tcpCheck, 'send', target, String(port), String(bytes)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 240_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(out) as SendResult);
      } catch {
        reject(new Error(`tcp-check send ${from.name} -> ${target} exited ${code}: ${err || out}\n${lab.daemonLog(from, 10)}`));
      }
    });
  });
}

async function serve(node: LabNode, port: number): Promise<void> {
  const server = node.pod.spawn(process.execPath, [tcpCheck, 'serve', String(port)]);
  await new Promise<void>((resolve, reject) => {
    server.stdout?.once('data', () => resolve());
    server.once('exit', () => reject(new Error('tcp-check server exited')));
  });
}

const modes = [
  { name: 'offloads on', daemonArgs: [] as string[], expect: /offloads vnetHdr\+tso\+uso\+udpGso\+udpGro/ },
  { name: 'offloads forced off (-udp-offload=false)', daemonArgs: ['-udp-offload=false'], expect: /offloads none \(-udp-offload=false\)/ },
];

describe('udp data plane moves 1 GB each way intact', suiteNeeds(rootAndNetns()), () => {
  for (const mode of modes) {
    test(mode.name, { timeout: 300_000 }, async (t) => {
      if (!need(t, rootAndNetns())) return;
      const lab = new Lab({ nodes: 2, backend: 'udp', ipv6: true, daemonArgs: mode.daemonArgs });
      try {
        await lab.up();
        const [a, b] = lab.nodes as [LabNode, LabNode];
        for (const n of lab.nodes) assert.match(lab.daemonLog(n), mode.expect, `${n.name} startup line names the offloads`);
        await serve(b, 5301);
        await serve(a, 5302);
        const [ab, ba] = await Promise.all([send(lab, a, b.podIP, 5301, GB), send(lab, b, a.podIPv6!, 5302, GB)]);
        t.diagnostic(`n1->n2 IPv4 ${((GB * 8) / ab.ms / 1e6).toFixed(2)} Gbit/s, n2->n1 IPv6 ${((GB * 8) / ba.ms / 1e6).toFixed(2)} Gbit/s (concurrent)`);
        assert.equal(ab.ok, true, 'IPv4 n1 -> n2 sha256 matches');
        assert.equal(ba.ok, true, 'IPv6 n2 -> n1 sha256 matches');
        assert.equal(ab.bytes, GB);
        assert.equal(ba.bytes, GB);
      } finally {
        await lab.down();
      }
    });
  }
});
