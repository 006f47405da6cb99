// The engine's test seam without root: an injected TUN fd (with the offloads negotiated elsewhere)
// and injected UDP sockets. The engine works on duplicates, so the caller's fds stay open and are the
// caller's to close; bad fds are refused with the errno name and what is wrong.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, fstatSync, openSync } from 'node:fs';
import { Engine } from '../../src/native/engine.js';
import { ipv4, icmpEcho } from '../helpers/packets.js';
import { FakeTun, udpSocketFd } from '../helpers/fake-tun.js';
import { NO_TUN_OFFLOADS, UdpPeer } from '../helpers/engine-rig.js';

const plain = { vnetHdr: false, tso: false, uso: false };

test('over an injected TUN fd: no name, no ifindex; close() leaves the caller\'s fd open', () => {
  const tun = new FakeTun();
  try {
    const e = Engine.open({ tun: { fd: tun.fd, ...plain }, bindV4: '127.0.0.1', port: 0 });
    assert.equal(e.tunName, '');
    assert.equal(e.tunIndex, 0);
    assert.ok(e.port > 0);
    assert.deepEqual(
      { vnetHdr: e.stats().offloads.vnetHdr, tso: e.stats().offloads.tso, uso: e.stats().offloads.uso },
      plain,
    );
    e.start();
    e.close();
    assert.ok(fstatSync(tun.fd).isSocket(), 'the injected fd is still open and ours');
  } finally {
    tun.close();
  }
});

test('the offloads given are the offloads in effect, no probe', () => {
  const tun = new FakeTun();
  try {
    const e = Engine.open({ tun: { fd: tun.fd, vnetHdr: true, tso: true, uso: false }, bindV4: '127.0.0.1', port: 0 });
    const o = e.stats().offloads;
    e.close();
    assert.deepEqual({ vnetHdr: o.vnetHdr, tso: o.tso, uso: o.uso }, { vnetHdr: true, tso: true, uso: false });
  } finally {
    tun.close();
  }
});

test('refused: a blocking fd, offloads the kernel would not allow, tun together with tunName', () => {
  const tun = new FakeTun();
  const blocking = openSync('/dev/null', 'r');
  try {
    assert.throws(
      () => Engine.open({ tun: { fd: blocking, ...plain }, bindV4: '127.0.0.1', port: 0 }),
      (e: Error & { code?: string }) => e.code === 'EINVAL' && /must be non-blocking/.test(e.message),
    );
    assert.throws(
      () => Engine.open({ tun: { fd: tun.fd, vnetHdr: false, tso: true, uso: false }, bindV4: '127.0.0.1', port: 0 }),
      (e: Error & { code?: string }) => e.code === 'EINVAL' && /tso needs vnetHdr/.test(e.message),
    );
    assert.throws(() => Engine.open({ tun: { fd: tun.fd, ...plain }, tunName: 'x%d', bindV4: '127.0.0.1', port: 0 }), TypeError);
    assert.throws(() => Engine.open({ tun: { fd: -1, ...plain }, bindV4: '127.0.0.1', port: 0 }), /file descriptor/);
  } finally {
    closeSync(blocking);
    tun.close();
  }
});

test('injected UDP sockets: the engine receives on them; refused when not a UDP socket of the family', async () => {
  const tun = new FakeTun();
  const fd4 = udpSocketFd('127.0.0.1', 0);
  const peer = await UdpPeer.bind('127.0.0.2', 0);
  try {
    const e = Engine.open({ tun: { fd: tun.fd, ...NO_TUN_OFFLOADS }, sockets: { fd4 } });
    try {
      assert.ok(e.port > 0);
      e.setPeers([{ subnet: '198.19.2.0/24', publicIP: '127.0.0.2', port: peer.port }]);
      e.start();
      const p = ipv4({ src: '198.19.2.3', dst: '198.19.1.2', proto: 1, payload: icmpEcho(0, 1, 1, Buffer.from('seam')) });
      await peer.send(p, '127.0.0.1', e.port);
      const [got] = await tun.take(1);
      assert.ok(got, 'the datagram sent to the injected socket reached the TUN');
      assert.equal(got.length, p.length);
    } finally {
      e.close();
    }
    assert.ok(fstatSync(fd4).isSocket(), 'the injected socket is still open and ours');
    assert.throws(
      () => Engine.open({ tun: { fd: tun.fd, ...plain }, sockets: { fd4: tun.fd } }),
      (err: Error & { code?: string }) => err.code === 'EINVAL' && /not an IPv4 UDP socket/.test(err.message),
    );
  } finally {
    peer.close();
    closeSync(fd4);
    tun.close();
  }
});
