import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatKlog, log, RateLimitedLog, setLogFormat, setLogSink, setVerbosity } from '../../src/log.js';

const klogShape = /^[IWEF]\d{4} \d{2}:\d{2}:\d{2}\.\d{6} +\d+ [\w.-]+\.ts:\d+\] .*/;

test('formatKlog matches the klog header layout', () => {
  const line = formatKlog('I', new Date(2026, 10, 24, 0, 33, 32, 998), 13440, 'local_manager.ts:199', 'Allocated lease');
  assert.equal(line, 'I1124 00:33:32.998000   13440 local_manager.ts:199] Allocated lease');
});

test('log lines carry severity, caller file and line; -v gates verbose lines', () => {
  const lines: string[] = [];
  const prev = setLogSink((l) => lines.push(l));
  try {
    setVerbosity(0);
    log.info('hello');
    log.v(2).info('hidden');
    setVerbosity(2);
    log.v(2).info('shown');
    log.warning('careful');
    assert.equal(lines.length, 3);
    for (const l of lines) assert.match(l, klogShape);
    assert.match(lines[0]!, /log\.test\.ts:\d+\] hello$/);
    assert.ok(lines[2]!.startsWith('W'));
  } finally {
    setVerbosity(0);
    setLogSink(prev);
  }
});

test('json format emits one object per line', () => {
  const lines: string[] = [];
  const prev = setLogSink((l) => lines.push(l));
  try {
    setLogFormat('json');
    log.error('boom', { device: 'flannel0' });
    const obj = JSON.parse(lines[0]!) as Record<string, unknown>;
    assert.equal(obj.level, 'error');
    assert.equal(obj.msg, 'boom');
    assert.equal(obj.device, 'flannel0');
  } finally {
    setLogFormat('text');
    setLogSink(prev);
  }
});

test('RateLimitedLog bounds lines per interval and reports how many it suppressed', () => {
  const lines: string[] = [];
  const prev = setLogSink((l) => lines.push(l));
  let now = 0;
  try {
    const rl = new RateLimitedLog(3, 1000, () => now);
    for (let i = 0; i < 100; i++) rl.warning('bad packet');
    assert.equal(lines.length, 3);
    now = 1500;
    rl.warning('bad packet');
    assert.equal(lines.length, 4);
    assert.match(lines[3]!, /97 similar messages suppressed/);
  } finally {
    setLogSink(prev);
  }
});
