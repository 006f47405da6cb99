// systemd notification from the addon (native/js/sd_notify.cc via src/native/sd-notify.ts): the
// datagram arrives on a socket this test owns, for a path and for an abstract name.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { sdNotify } from '../../src/native/sd-notify.js';
import { NotifySocket } from '../helpers/notify-socket.js';
import { binary, need } from '../helpers/prereq.js';

const dir = mkdtempSync(join(tmpdir(), 'flannelts-notify-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('without NOTIFY_SOCKET nothing is sent and the call says so', () => {
  assert.equal(sdNotify('READY=1', {}), false);
  assert.equal(sdNotify('READY=1', { NOTIFY_SOCKET: '' }), false);
});

test('READY=1 reaches a socket at a path and one with an abstract name', async (t) => {
  if (!need(t, binary('python3'))) return;
  for (const address of [join(dir, 'notify.sock'), `@flannelts-test-${process.pid}-${Date.now()}`]) {
    const sock = await NotifySocket.open(address);
    try {
      assert.equal(sdNotify('READY=1', { NOTIFY_SOCKET: address }), true);
      assert.equal((await sock.waitFor('READY=1', 5000)).message, 'READY=1');
      sdNotify('STATUS=second\nREADY=1', { NOTIFY_SOCKET: address });
      assert.equal((await sock.waitFor('STATUS=', 5000)).message, 'STATUS=second\nREADY=1', 'one datagram, sent as given');
      assert.equal(sock.received.length, 2);
    } finally {
      await sock.close();
    }
  }
});

test('an unreachable or malformed NOTIFY_SOCKET is an error naming the errno and the address', () => {
  const missing = join(dir, 'nobody-listens.sock');
  assert.throws(() => sdNotify('READY=1', { NOTIFY_SOCKET: missing }), new RegExp(`NOTIFY_SOCKET=${missing}: ENOENT`));
  assert.throws(() => sdNotify('READY=1', { NOTIFY_SOCKET: `@flannelts-nobody-${process.pid}` }), /ECONNREFUSED/);
  assert.throws(() => sdNotify('READY=1', { NOTIFY_SOCKET: 'vsock:2:1234' }), /not a socket path \(\/\.\.\.\) or abstract name/);
  assert.throws(() => sdNotify('READY=1', { NOTIFY_SOCKET: '/' + 'x'.repeat(120) }), /longer than a unix socket address \(108 bytes\)/);
});
