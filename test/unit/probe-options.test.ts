// Bad prober options are one-line errors naming the field, before any thread or socket exists (no
// root needed: the namespace file is the last thing opened, and opening a missing one needs none).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { probe, type ProbeOptions } from '../../src/probe/prober.js';

const good: ProbeOptions = { netns: '/proc/self/ns/net', target: '198.18.0.2', count: 2, intervalMs: 200, timeoutMs: 1000 };

async function rejection(o: unknown): Promise<Error> {
  try {
    await probe(o as ProbeOptions);
  } catch (e) {
    return e as Error;
  }
  throw new Error(`accepted ${JSON.stringify(o)}`);
}

test('each bad field is named in a one-line error', async () => {
  const cases: Array<[Partial<Record<keyof ProbeOptions, unknown>>, string | RegExp, ErrorConstructor]> = [
    [{ netns: '/nonexistent/ns' }, 'probe: netns /nonexistent/ns: ENOENT (no such network namespace; see ip netns list)', Error],
    [{ netns: 'flannelts-no-such-ns' }, 'probe: netns /var/run/netns/flannelts-no-such-ns: ENOENT (no such network namespace; see ip netns list)', Error],
    [{ netns: '/etc/hostname' }, 'probe: netns /etc/hostname is not a network namespace file', Error],
    [{ netns: '' }, /^probe: netns must be a network namespace name or path/, TypeError],
    [{ target: 'pod-b' }, "probe: target 'pod-b' is not an IPv4 or IPv6 address", TypeError],
    [{ target: undefined }, 'probe: target must be an IPv4 or IPv6 address', TypeError],
    [{ target: '198.18.0.0/24' }, "probe: target '198.18.0.0/24' is not an IPv4 or IPv6 address", TypeError],
    [{ target: '224.0.0.1' }, "probe: target 224.0.0.1 must be one host's unicast address", RangeError],
    [{ target: '::' }, "probe: target :: must be one host's unicast address", RangeError],
    [{ family: 6 }, 'probe: family 6 does not match target 198.18.0.2 (an IPv4 address)', RangeError],
    [{ target: '2001:db8::2', family: 4 }, 'probe: family 4 does not match target 2001:db8::2 (an IPv6 address)', RangeError],
    [{ family: 5 }, 'probe: family must be 4 or 6 (got 5)', RangeError],
    [{ count: 0 }, 'probe: count must be an integer from 1 to 65535 (got 0)', RangeError],
    [{ count: 65536 }, 'probe: count must be an integer from 1 to 65535 (got 65536)', RangeError],
    [{ count: 1.5 }, 'probe: count must be an integer from 1 to 65535 (got 1.5)', RangeError],
    [{ count: '2' }, "probe: count must be an integer from 1 to 65535 (got '2')", TypeError],
    [{ count: undefined }, 'probe: count is required: an integer from 1 to 65535', TypeError],
    [{ intervalMs: -1 }, 'probe: intervalMs must be a number from 0 to 3600000 (got -1)', RangeError],
    [{ timeoutMs: 0 }, 'probe: timeoutMs must be a number from 1 to 3600000 (got 0)', RangeError],
    [{ timeoutMs: Number.NaN }, 'probe: timeoutMs must be a number from 1 to 3600000 (got NaN)', RangeError],
    [{ cpu: 100000 }, /^probe: cpu must be an integer from 0 to \d+ \(got 100000\)$/, RangeError],
    [{ stopAfterReplies: -1 }, 'probe: stopAfterReplies must be an integer from 0 to 65535 (got -1)', RangeError],
    [{ stopAfterErrors: 70000 }, 'probe: stopAfterErrors must be an integer from 0 to 65535 (got 70000)', RangeError],
    [{ size: 7 }, 'probe: size must be an integer from 8 to 1472 (got 7)', RangeError],
    [{ size: 1473 }, 'probe: size must be an integer from 8 to 1472 (got 1473)', RangeError],
    [{ size: 56.5 }, 'probe: size must be an integer from 8 to 1472 (got 56.5)', RangeError],
  ];
  for (const [change, message, kind] of cases) {
    const e = await rejection({ ...good, ...change });
    assert.ok(e instanceof kind, `${JSON.stringify(change)}: ${e.constructor.name}`);
    if (typeof message === 'string') assert.equal(e.message, message);
    else assert.match(e.message, message);
    assert.ok(!e.message.includes('\n'), 'one line');
  }
  assert.equal((await rejection(null)).message, 'probe: options must be an object {netns, target, count, intervalMs, timeoutMs}');
});
