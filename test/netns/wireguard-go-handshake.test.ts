// Our protocol core against Debian's wireguard-go configured by the real `wg`, in two network
// namespaces (test/helpers/wg-interop.ts): wireguard-go accepts our initiation (it answers, and its
// kernel answers the ICMP echo we sent with the new keys) and our response (it sends its queued
// packet with the keys our response gave it). Our initiation comes out byte for byte as in the
// fixture the no-root tests use (the rest depends on wireguard-go's fresh ephemeral keys).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { binary, need, rootAndNetns } from '../helpers/prereq.js';
import { captureWireguardGo, type InteropRecord } from '../helpers/wg-interop.js';
import { run } from '../../src/lab/netns.js';

const fixture = JSON.parse(readFileSync(new URL('../../../test/fixtures/wireguard/wireguard-go-handshake.json', import.meta.url), 'utf8')) as InteropRecord;

test('wireguard-go accepts our initiation and our response (handshake both ways, data both ways, PSK on)', async (t) => {
  if (!need(t, rootAndNetns(), binary('wireguard-go'), binary('wg'), binary('nsenter'))) return;
  const tmp = mkdtempSync(join(tmpdir(), 'flannelts-wg-'));
  try {
    const rec = await captureWireguardGo(tmp);
    assert.equal(rec.initiate.error, undefined, rec.initiate.error);
    assert.deepEqual(rec.initiate.reasons, ['queued', 'response', 'data']);
    assert.equal(rec.initiate.sent[0], fixture.initiate.sent[0], 'the initiation is the fixture, byte for byte');
    const reply = Buffer.from(rec.initiate.inner[0]!, 'hex');
    assert.equal(reply[20], 0, 'their kernel sent an ICMP echo reply');
    assert.ok(reply.includes(Buffer.from('flannelts wireguard fixture')));

    assert.equal(rec.respond.error, undefined, rec.respond.error);
    assert.deepEqual(rec.respond.reasons, ['initiation', 'data']);
    assert.ok(Buffer.from(rec.respond.inner[0]!, 'hex').includes(Buffer.from(rec.respond.trigger, 'hex')), 'their queued packet arrived');
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  assert.equal(run('ip', ['netns', 'list']).includes(`fwg${process.pid % 10000}-`), false, 'namespaces removed');
});
