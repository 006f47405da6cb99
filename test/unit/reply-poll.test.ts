// The engine's reply polling: the adaptive window (native/engine/reply_poll.h) through the addon's pure helper,
// the option's validation, the -udp-reply-poll-us flag and how status shows it. The polling itself
// (a ping answered by the sending thread, one-way traffic shrinking the window) is in
// test/netns/engine.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FlagError, parseFlags, toOptions } from '../../src/config/flags.js';
import { formatStatus } from '../../src/cli/status-format.js';
import { DEFAULT_REPLY_POLL_US, Engine } from '../../src/native/engine.js';
import { replyPollWindows } from '../../src/native/packet.js';
import type { StatusSnapshot } from '../../src/status.js';

const zeros = (n: number): number[] => Array.from({ length: n }, () => 0);

test('reply poll window: full while answers come, halves after 3 misses in a row, off below 16 us, probed every 64th small send', () => {
  assert.deepEqual(replyPollWindows(300, [true, true, true]), [300, 300, 300]);
  // Nothing ever answers: a halving series (3 polls per size), then 63 sends without polling and a
  // probe at full size; a probe that runs out is followed by the next 63 skipped sends, no new series.
  const never = replyPollWindows(300, Array.from({ length: 200 }, () => false));
  assert.deepEqual(never.slice(0, 15), [300, 300, 300, 150, 150, 150, 75, 75, 75, 37, 37, 37, 18, 18, 18]);
  assert.deepEqual(never.slice(15, 78), zeros(63));
  assert.deepEqual(never.slice(78, 80), [300, 0]);
  assert.deepEqual(never.slice(80, 142), zeros(62));
  assert.equal(never[142], 300);
  assert.equal(never.filter((w) => w > 0).length, 17, 'polled after 17 of 200 unanswered sends (15 + probes at 78 and 142)');
  // One or two late answers in a row do not shrink the window; any answer resets the count.
  assert.deepEqual(replyPollWindows(300, [false, false, true, false, false, true]), [300, 300, 300, 300, 300, 300]);
  assert.deepEqual(replyPollWindows(300, [false, false, false, false, false, false, true, true]), [300, 300, 300, 150, 150, 150, 75, 300]);
  // A probe that finds an answer brings polling back at full size for the sends after it.
  const outcomes = [...Array.from({ length: 78 }, () => false), true, true];
  assert.deepEqual(replyPollWindows(300, outcomes).slice(78), [300, 300]);
  // Windows below 32 us have no half to go to; 0 is off for good.
  assert.deepEqual(replyPollWindows(20, [false, false, false, false]), [20, 20, 20, 0]);
  assert.deepEqual(replyPollWindows(0, [true, true]), [0, 0]);
});

test('EngineOptions.replyPollUs is checked before anything is opened', () => {
  for (const bad of [-1, 1.5, 10_001, '300', Number.NaN]) {
    assert.throws(() => Engine.open({ replyPollUs: bad as number }), (e: Error) => e instanceof TypeError && /replyPollUs must be an integer from 0 \(off\) to 10000/.test(e.message), String(bad));
  }
});

test('-udp-reply-poll-us: default 300 (the engine default), 0 turns it off, out of range is a one-line error', () => {
  const opts = (argv: string[]) => toOptions(parseFlags(argv, {}));
  assert.equal(opts([]).replyPollUs, 300);
  assert.equal(DEFAULT_REPLY_POLL_US, 300);
  assert.equal(opts(['-udp-reply-poll-us=0']).replyPollUs, 0);
  assert.equal(opts(['-udp-reply-poll-us', '1000']).replyPollUs, 1000);
  assert.equal(toOptions(parseFlags([], { FLANNELD_UDP_REPLY_POLL_US: '50' })).replyPollUs, 50);
  assert.throws(() => opts(['-udp-reply-poll-us=-5']), (e: Error) => e instanceof FlagError && /invalid -udp-reply-poll-us -5: must be an integer from 0 \(off\) to 10000/.test(e.message));
  assert.throws(() => opts(['-udp-reply-poll-us=20000']), FlagError);
  assert.throws(() => opts(['-udp-reply-poll-us=fast']), FlagError);
});

test('status: reply polling counters are shown in one line', () => {
  const base: StatusSnapshot = { version: '0', pid: 1, uptimeSeconds: 1, peers: [], daemon: { leaseEvents: 0, renewals: 0, renewErrors: 0, reconcileRepairs: 0, reconcileErrors: 0 } };
  assert.match(formatStatus({ ...base, replyPoll: { windowUs: 300, hits: 7, misses: 2, skipped: 63 } }), /^reply polling: up to 300 us after small sends; 7 answered, 2 ran out, 63 skipped$/m);
  assert.match(formatStatus({ ...base, replyPoll: { windowUs: 0, hits: 0, misses: 0, skipped: 0 } }), /^reply polling: off$/m);
  assert.doesNotMatch(formatStatus(base), /reply polling/);
});
