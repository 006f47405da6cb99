// The lab's verdict on one pod pair from a prober run (src/lab/checks.ts): the mean RTT when anything
// answered, else one reason, the most telling failure first (the sender's own refusal, then an ICMP
// error and who sent it, then silence), with how many echoes went unanswered. Pure: no root.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pairOutcome } from '../../src/lab/checks.js';
import type { EchoFailure, ProbeResult } from '../../src/probe/prober.js';

const run = (replies: number[], failures: Array<Pick<EchoFailure, 'seq' | 'reason' | 'detail'>>): ProbeResult => ({
  target: '198.19.2.2',
  family: 4,
  sent: replies.length + failures.length,
  startedAtMs: 0,
  received: replies.length,
  replies: replies.map((rttUs, i) => ({ seq: i + 1, rttUs, sentAtMs: i * 200 })),
  failures: failures.map((f) => ({ ...f, sentAtMs: 0 })),
  duplicates: 0,
  late: 0,
  end: 'done',
});

const timeout = (seq: number) => ({ seq, reason: 'timeout' as const, detail: 'no reply from 198.19.2.2 within 1000 ms' });
const unreachable = (seq: number) => ({ seq, reason: 'unreachable' as const, detail: `ICMP destination unreachable (host unreachable) from 198.19.2.${seq}` });
const stopped = (seq: number) => ({ seq, reason: 'stopped' as const, detail: 'still waiting for a reply when the probe stopped' });

test('answered: ok with the mean RTT of the replies in ms, failures beside them do not matter', () => {
  assert.deepEqual(pairOutcome(run([100, 300], [])), { ok: true, detail: '0.200 ms' });
  assert.deepEqual(pairOutcome(run([1500], [timeout(2)])), { ok: true, detail: '1.500 ms' });
});

test('unanswered: the most telling failure, the latest of its kind, and the echo count', () => {
  // ICMP errors before timeouts (rate-limited errors turn into silence), the latest error.
  assert.deepEqual(pairOutcome(run([], [unreachable(1), unreachable(2), timeout(3), timeout(4), stopped(5)])), {
    ok: false,
    detail: 'unreachable: ICMP destination unreachable (host unreachable) from 198.19.2.2; 5 echoes, no reply',
  });
  // The sender's own refusal before anything the network said.
  const noRoute = { seq: 3, reason: 'no-route' as const, detail: 'no route to 198.19.2.2 (sendto: ENETUNREACH (Network is unreachable))' };
  assert.equal(pairOutcome(run([], [unreachable(1), timeout(2), noRoute])).detail, `no-route: ${noRoute.detail}; 3 echoes, no reply`);
  assert.equal(pairOutcome(run([], [timeout(1)])).detail, 'timeout: no reply from 198.19.2.2 within 1000 ms; 1 echo, no reply');
  // Only stopped echoes (the run was ended early): still one line that says so.
  assert.equal(pairOutcome(run([], [stopped(1)])).detail, 'stopped: still waiting for a reply when the probe stopped; 1 echo, no reply');
  assert.deepEqual(pairOutcome({ ...run([], []), end: 'aborted' }), { ok: false, detail: 'no echo sent (aborted)' });
});
