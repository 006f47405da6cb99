// One reason and one line per failed echo, from what the native prober reports.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeFailure, type RawFailure } from '../../src/probe/failure.js';

const at = { seq: 1, sentAtNs: 0 };
const icmp = (type: number, code: number, from: string, mtu?: number): RawFailure => ({ ...at, kind: 'icmp', type, code, from, ...(mtu ? { mtu } : {}) });
const send = (errno: string, message: string): RawFailure => ({ ...at, kind: 'send', errno, message });

test('ICMP errors name the message, its code and who sent it', () => {
  const cases: Array<[4 | 6, RawFailure, string, string]> = [
    [4, icmp(3, 1, '198.18.0.1'), 'unreachable', 'ICMP destination unreachable (host unreachable) from 198.18.0.1'],
    [4, icmp(3, 0, '198.18.0.1'), 'unreachable', 'ICMP destination unreachable (net unreachable) from 198.18.0.1'],
    [4, icmp(3, 13, '198.18.0.1'), 'unreachable', 'ICMP destination unreachable (communication administratively prohibited) from 198.18.0.1'],
    [4, icmp(3, 99, '198.18.0.1'), 'unreachable', 'ICMP destination unreachable (code 99) from 198.18.0.1'],
    [4, icmp(3, 4, '198.18.0.1', 1400), 'packet-too-big', 'ICMP destination unreachable (fragmentation needed, MTU 1400) from 198.18.0.1'],
    [4, icmp(11, 0, '198.18.0.9'), 'time-exceeded', 'ICMP time exceeded (TTL exceeded in transit) from 198.18.0.9'],
    [4, icmp(12, 2, '198.18.0.9'), 'parameter-problem', 'ICMP parameter problem (bad length) from 198.18.0.9'],
    [6, icmp(1, 0, '2001:db8::1'), 'unreachable', 'ICMPv6 destination unreachable (no route to destination) from 2001:db8::1'],
    [6, icmp(1, 3, '2001:db8::1'), 'unreachable', 'ICMPv6 destination unreachable (address unreachable) from 2001:db8::1'],
    [6, icmp(1, 1, '2001:db8::1'), 'unreachable', 'ICMPv6 destination unreachable (communication administratively prohibited) from 2001:db8::1'],
    [6, icmp(2, 0, '2001:db8::1', 1280), 'packet-too-big', 'ICMPv6 packet too big (MTU 1280) from 2001:db8::1'],
    [6, icmp(3, 0, '2001:db8::9'), 'time-exceeded', 'ICMPv6 time exceeded (hop limit exceeded in transit) from 2001:db8::9'],
    [6, icmp(4, 1, '2001:db8::9'), 'parameter-problem', 'ICMPv6 parameter problem (unrecognized next header) from 2001:db8::9'],
  ];
  for (const [family, f, reason, detail] of cases) {
    assert.deepEqual(describeFailure(f, family, family === 4 ? '198.18.5.5' : '2001:db8:5::5', 1000), { reason, detail });
  }
});

test('sendto errors: ENETUNREACH is no route, EHOSTUNREACH unreachable, anything else by its errno name', () => {
  assert.deepEqual(describeFailure(send('ENETUNREACH', 'Network is unreachable'), 4, '198.18.5.5', 1000), {
    reason: 'no-route',
    detail: 'no route to 198.18.5.5 (sendto: ENETUNREACH (Network is unreachable))',
  });
  assert.deepEqual(describeFailure(send('EHOSTUNREACH', 'No route to host'), 6, '2001:db8:5::5', 1000), {
    reason: 'unreachable',
    detail: 'the route to 2001:db8:5::5 is unreachable (sendto: EHOSTUNREACH (No route to host))',
  });
  assert.deepEqual(describeFailure(send('EACCES', 'Permission denied'), 4, '198.18.5.5', 1000), { reason: 'send-error', detail: 'sendto: EACCES (Permission denied)' });
});

test('a timeout says how long it waited; an echo cut short by the end of the run is stopped', () => {
  assert.deepEqual(describeFailure({ ...at, kind: 'timeout' }, 4, '198.18.5.5', 250), { reason: 'timeout', detail: 'no reply from 198.18.5.5 within 250 ms' });
  assert.equal(describeFailure({ ...at, kind: 'stopped' }, 6, '2001:db8:5::5', 250).reason, 'stopped');
});
