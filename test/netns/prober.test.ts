// The ICMP echo prober against real namespaces: a sender and a peer on a veth. The peer answers for
// itself, rejects 198.18.1.0/24 and 2001:db8:1::/64 with an `unreachable` route (so an ICMP error
// comes back) and drops 198.18.2.0/24 and 2001:db8:2::/64 into a blackhole (so nothing comes back);
// the sender has no route at all to 198.18.3.0/24 and 2001:db8:3::/64.
//
// IPv4 errors for an `unreachable` route come from the kernel's ip_error(), which has a token bucket of
// its own per source address (net.ipv4.route.error_burst, 5 errors, then error_cost, one a second: host
// sysctls that a namespace cannot change, unlike icmp_ratelimit). The tests that need errors together
// ask for more than 5 within a second, so each reaches its rejected address from a source address of
// its own (a route with `src`), and each source has a full bucket.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { NetnsSet, vethPair, type Namespace } from '../../src/lab/netns.js';
import { probe, reachable, type ProbeResult } from '../../src/probe/prober.js';
import { rootAndNetns, suiteNeeds } from '../helpers/prereq.js';

const SENDER = { v4: '198.18.0.1', v6: '2001:db8::1' };
const PEER = { v4: '198.18.0.2', v6: '2001:db8::2' };
const REJECTED = { v4: '198.18.1.1', v6: '2001:db8:1::1' };
/** Rejected too, reached from other source addresses (see the top): one per test that needs errors. */
const REJECTED_SETTLE = { v4: '198.18.1.65', v6: '2001:db8:1::65' };
const REJECTED_ONCE = { v4: '198.18.1.129', v6: '2001:db8:1::129' };
const DROPPED = { v4: '198.18.2.1', v6: '2001:db8:2::1' };
const NOWHERE = { v4: '198.18.3.1', v6: '2001:db8:3::1' };
const FAMILIES = [4, 6] as const;
const pick = (a: { v4: string; v6: string }, f: 4 | 6): string => (f === 4 ? a.v4 : a.v6);

/** The result and how long the call took, in microseconds. */
async function timed(run: () => Promise<ProbeResult>): Promise<{ r: ProbeResult; wallUs: number }> {
  const t0 = performance.now();
  const r = await run();
  return { r, wallUs: (performance.now() - t0) * 1000 };
}

describe('ICMP echo prober between namespaces', suiteNeeds(rootAndNetns()), () => {
  let set: NetnsSet;
  let sender: Namespace;
  let peer: Namespace;

  before(() => {
    set = new NetnsSet();
    sender = set.add('snd');
    peer = set.add('peer');
    vethPair(sender, 'v0', peer, 'v1');
    sender.ip('addr', 'add', `${SENDER.v4}/24`, 'dev', 'v0');
    sender.ip('-6', 'addr', 'add', `${SENDER.v6}/64`, 'dev', 'v0', 'nodad');
    peer.ip('addr', 'add', `${PEER.v4}/24`, 'dev', 'v1');
    peer.ip('-6', 'addr', 'add', `${PEER.v6}/64`, 'dev', 'v1', 'nodad');
    for (const net of ['198.18.1.0/24', '198.18.2.0/24']) sender.ip('route', 'add', net, 'via', PEER.v4);
    for (const [net, src] of [['198.18.1.64/26', '198.18.0.11'], ['198.18.1.128/26', '198.18.0.12']] as const) {
      sender.ip('addr', 'add', `${src}/24`, 'dev', 'v0');
      sender.ip('route', 'add', net, 'via', PEER.v4, 'src', src);
    }
    for (const net of ['2001:db8:1::/64', '2001:db8:2::/64']) sender.ip('-6', 'route', 'add', net, 'via', PEER.v6);
    // The peer forwards, so it answers for the rejected nets with ICMP errors (no ICMP rate limit; IPv4's
    // own limit for unreachable routes: see the top).
    for (const [key, value] of [
      ['net/ipv4/ip_forward', '1'],
      ['net/ipv6/conf/all/forwarding', '1'],
      ['net/ipv4/icmp_ratelimit', '0'],
      ['net/ipv6/icmp/ratelimit', '0'],
    ]) {
      peer.exec('sh', ['-c', `echo ${value} > /proc/sys/${key}`]);
    }
    peer.ip('route', 'add', 'unreachable', '198.18.1.0/24');
    peer.ip('-6', 'route', 'add', 'unreachable', '2001:db8:1::/64');
    peer.ip('route', 'add', 'blackhole', '198.18.2.0/24');
    peer.ip('-6', 'route', 'add', 'blackhole', '2001:db8:2::/64');
  });

  after(async () => {
    await set?.destroy();
  });

  for (const family of FAMILIES) {
    test(`IPv${family}: a reply per echo, in order, each RTT positive and within the call's wall clock`, async () => {
      const target = pick(PEER, family);
      const { r, wallUs } = await timed(() => probe({ netns: sender.name, target, family, count: 3, intervalMs: 20, timeoutMs: 2000, cpu: 0 }));
      assert.equal(r.sent, 3);
      assert.equal(r.received, 3);
      assert.deepEqual(r.failures, []);
      assert.deepEqual(r.replies.map((x) => x.seq), [1, 2, 3]);
      assert.equal(r.end, 'done');
      assert.equal(r.duplicates, 0);
      for (const x of r.replies) {
        assert.ok(x.rttUs > 0 && x.rttUs <= wallUs, `rtt ${x.rttUs} us within (0, ${wallUs}] us`);
      }
      // The schedule: echo n leaves (n-1) x interval after the first.
      assert.ok(r.replies[2]!.sentAtMs >= 40, `third echo sent at ${r.replies[2]!.sentAtMs} ms`);
    });

    test(`IPv${family}: a dropped destination times out, each echo after its own timeout`, async () => {
      const target = pick(DROPPED, family);
      const { r, wallUs } = await timed(() => probe({ netns: sender.name, target, count: 2, intervalMs: 50, timeoutMs: 300 }));
      assert.equal(r.received, 0);
      assert.deepEqual(
        r.failures.map((f) => [f.seq, f.reason, f.detail]),
        [1, 2].map((seq) => [seq, 'timeout', `no reply from ${target} within 300 ms`]),
      );
      assert.ok(wallUs >= 350_000, `the second echo waited its full timeout (${wallUs} us)`);
    });

    test(`IPv${family}: an unreachable route at the peer comes back as an ICMP error naming the peer, before the timeout`, async () => {
      const target = pick(REJECTED, family);
      const { r, wallUs } = await timed(() => probe({ netns: sender.name, target, count: 2, intervalMs: 50, timeoutMs: 5000 }));
      const detail =
        family === 4
          ? `ICMP destination unreachable (host unreachable) from ${PEER.v4}`
          : `ICMPv6 destination unreachable (no route to destination) from ${PEER.v6}`;
      assert.deepEqual(
        r.failures.map((f) => [f.seq, f.reason, f.detail, f.from]),
        [1, 2].map((seq) => [seq, 'unreachable', detail, pick(PEER, family)]),
      );
      assert.ok(wallUs < 5_000_000, `ended by the errors, not the 5 s timeout (${wallUs} us)`);
    });

    test(`IPv${family}: no route in the sender's table fails at once with ENETUNREACH`, async () => {
      const target = pick(NOWHERE, family);
      const { r, wallUs } = await timed(() => probe({ netns: sender.name, target, count: 2, intervalMs: 20, timeoutMs: 5000 }));
      assert.deepEqual(
        r.failures.map((f) => [f.seq, f.reason, f.errno]),
        [
          [1, 'no-route', 'ENETUNREACH'],
          [2, 'no-route', 'ENETUNREACH'],
        ],
      );
      assert.equal(r.failures[0]!.detail, `no route to ${target} (sendto: ENETUNREACH (Network is unreachable))`);
      assert.ok(wallUs < 5_000_000, `no timeout waited (${wallUs} us)`);
    });

    test(`IPv${family}: stopAfterErrors ends a refused run at its n-th refusal; silence does not count`, async () => {
      const refused = await probe({ netns: sender.name, target: pick(REJECTED_SETTLE, family), count: 20, intervalMs: 20, timeoutMs: 5000, stopAfterErrors: 2 });
      assert.equal(refused.end, 'errors');
      assert.deepEqual(refused.failures.filter((f) => f.reason !== 'stopped').map((f) => f.reason), ['unreachable', 'unreachable']);
      assert.ok(refused.sent < 20, `sent ${refused.sent}`);
      const routeless = await probe({ netns: sender.name, target: pick(NOWHERE, family), count: 20, intervalMs: 20, timeoutMs: 5000, stopAfterErrors: 3 });
      assert.deepEqual([routeless.end, routeless.sent, routeless.failures.map((f) => f.reason)], ['errors', 3, ['no-route', 'no-route', 'no-route']]);
      const silent = await probe({ netns: sender.name, target: pick(DROPPED, family), count: 3, intervalMs: 20, timeoutMs: 200, stopAfterErrors: 1 });
      assert.deepEqual([silent.end, silent.sent, silent.failures.map((f) => f.reason)], ['done', 3, ['timeout', 'timeout', 'timeout']]);
    });

    test(`IPv${family}: reachable() answers with the first reply or the first failure`, async () => {
      const ok = await reachable({ netns: sender.name, target: pick(PEER, family), timeoutMs: 5000 });
      assert.ok(ok.ok && ok.rttUs > 0, JSON.stringify(ok));
      const rejected = await reachable({ netns: sender.name, target: pick(REJECTED_ONCE, family), timeoutMs: 5000 });
      assert.ok(!rejected.ok && rejected.reason === 'unreachable', JSON.stringify(rejected));
      const nowhere = await reachable({ netns: sender.name, target: pick(NOWHERE, family), timeoutMs: 5000 });
      assert.ok(!nowhere.ok && nowhere.reason === 'no-route', JSON.stringify(nowhere));
    });
  }

  test('a size of 1000 bytes (ping -s 1000) is answered; each reply is placed on the wall clock from the run\'s start', async () => {
    for (const family of FAMILIES) {
      const before = Date.now();
      const r = await probe({ netns: sender.name, target: pick(PEER, family), count: 3, intervalMs: 20, timeoutMs: 2000, size: 1000 });
      const after = Date.now();
      assert.equal(r.received, 3, `IPv${family}`);
      // Date.now() has millisecond steps; the run started inside the call and every reply came before it returned.
      assert.ok(r.startedAtMs >= before - 1 && r.startedAtMs <= after + 1, `started ${r.startedAtMs} in [${before}, ${after}]`);
      for (const x of r.replies) {
        const at = r.startedAtMs + x.sentAtMs + x.rttUs / 1000;
        assert.ok(at >= r.startedAtMs && at <= after + 1, `reply ${x.seq} at ${at}, run ${r.startedAtMs}..${after}`);
      }
    }
  });

  test('the namespace can be named, given as /var/run/netns/NAME or as /proc/PID/ns/net', async () => {
    const sleeper = sender.spawn('sleep', ['30']);
    await new Promise((resolve) => sleeper.once('spawn', resolve));
    // 'spawn' comes when `ip netns exec` starts, before it has entered the namespace: until it has,
    // /proc/PID/ns/net is this process's own namespace (and an echo from there must not leave).
    const entered = (): boolean => statSync(`/proc/${sleeper.pid}/ns/net`).ino === statSync(`/var/run/netns/${sender.name}`).ino;
    for (let i = 0; i < 200 && !entered(); i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(entered(), 'the sleeper entered the namespace');
    try {
      for (const netns of [sender.name, `/var/run/netns/${sender.name}`, `/proc/${sleeper.pid}/ns/net`]) {
        const r = await probe({ netns, target: PEER.v4, count: 1, intervalMs: 0, timeoutMs: 2000 });
        assert.equal(r.received, 1, netns);
      }
    } finally {
      sleeper.kill('SIGKILL');
    }
  });

  test('abort ends a long stream early: what was measured comes back, the echo in flight as stopped', async () => {
    const controller = new AbortController();
    const t0 = performance.now();
    const running = probe({ netns: sender.name, target: DROPPED.v4, count: 1000, intervalMs: 10, timeoutMs: 60_000, signal: controller.signal });
    setTimeout(() => controller.abort(), 150);
    const r = await running;
    const wallMs = performance.now() - t0;
    assert.equal(r.end, 'aborted');
    assert.ok(r.sent > 1 && r.sent < 1000, `sent ${r.sent}`);
    assert.equal(r.failures.length, r.sent);
    assert.ok(r.failures.every((f) => f.reason === 'stopped'));
    assert.ok(wallMs < 10_000, `resolved ${wallMs} ms after start, not after the timeouts`);
    // An already aborted signal sends nothing.
    const none = await probe({ netns: sender.name, target: PEER.v4, count: 5, intervalMs: 10, timeoutMs: 1000, signal: AbortSignal.abort() });
    assert.deepEqual([none.sent, none.end], [0, 'aborted']);
  });

  test('probers sharing a namespace, and echoes crossing the other way, each get exactly their own replies', async () => {
    const o = { count: 20, intervalMs: 5, timeoutMs: 2000 };
    const results = await Promise.all([
      probe({ netns: sender.name, target: PEER.v4, ...o }),
      probe({ netns: sender.name, target: PEER.v4, ...o }),
      probe({ netns: sender.name, target: PEER.v6, ...o }),
      probe({ netns: peer.name, target: SENDER.v4, ...o }),
      probe({ netns: peer.name, target: SENDER.v6, ...o }),
    ]);
    for (const r of results) {
      assert.deepEqual([r.received, r.failures.length, r.duplicates, r.late], [20, 0, 0, 0], `${r.target}`);
      assert.deepEqual(r.replies.map((x) => x.seq), Array.from({ length: 20 }, (_, i) => i + 1));
    }
  });
});
