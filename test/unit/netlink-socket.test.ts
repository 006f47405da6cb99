// The native NetlinkSocket without root and without sending anything to the kernel (the test process
// runs in the root namespace, whose devices tests must not touch): construction, errno-named errors,
// recv timeout, subscription exclusivity, close.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadAddon } from '../../src/native/addon.js';
import { openNetlinkSocket } from '../../src/netlink/socket.js';

type SysErr = Error & { code?: string; errno?: number; syscall?: string };
const isErr = (code: string, re: RegExp) => (e: unknown): boolean => {
  const err = e as SysErr;
  return err.code === code && re.test(err.message);
};

test('opens, reports its port id, and times out with null when nothing arrives', () => {
  const s = openNetlinkSocket();
  try {
    assert.ok(s.pid > 0);
    const t0 = Date.now();
    assert.equal(s.recv(30), null);
    assert.ok(Date.now() - t0 >= 25);
  } finally {
    s.close();
  }
});

test('errors carry the errno name as code and name the operation', () => {
  assert.throws(() => openNetlinkSocket(99), isErr('EPROTONOSUPPORT', /^netlink socket: EPROTONOSUPPORT/));
  const s = openNetlinkSocket();
  s.close();
  s.close(); // idempotent
  assert.throws(() => s.send(Buffer.alloc(16)), isErr('EBADF', /^netlink send: EBADF/));
  assert.throws(() => s.recv(0), isErr('EBADF', /^netlink recv: EBADF/));
  const open = openNetlinkSocket();
  try {
    const bad = open as unknown as { send(x: unknown): void };
    assert.throws(() => bad.send('not a buffer'), TypeError);
  } finally {
    open.close();
  }
});

test('a subscribed socket refuses recv and a second subscribe; close stops the reader thread', () => {
  const Ctor = loadAddon()['NetlinkSocket'] as new (p?: number, g?: number) => {
    subscribe(cb: (err: Error | null, buf: Buffer | null) => void): void;
    recv(ms: number): Buffer | null;
    close(): void;
  };
  const s = new Ctor(0, 0);
  s.subscribe(() => undefined);
  try {
    assert.throws(() => s.recv(0), isErr('EBUSY', /socket is subscribed/));
    assert.throws(() => s.subscribe(() => undefined), isErr('EBUSY', /already subscribed/));
  } finally {
    s.close();
  }
  // If close() had not released the thread-safe function, this test file would never exit.
});
