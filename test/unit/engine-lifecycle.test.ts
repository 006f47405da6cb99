// Stop and join without root: engines over FakeTuns closed while traffic flows through them. close()
// returns, the engine's threads are gone (joined, not detached), the other engine carries on, and a
// closed engine refuses control calls but still reports its counters.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { setImmediate as yieldLoop, setTimeout as sleep } from 'node:timers/promises';
import { ALL_TUN_OFFLOADS, EngineRig, until } from '../helpers/engine-rig.js';
import { icmpEcho, ipv4, tcp, withL4Checksum } from '../helpers/packets.js';
import { pattern } from '../helpers/golden-cases.js';

/** Threads of this process named like the engine's data threads. */
function engineThreads(): number {
  let n = 0;
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      if (readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').startsWith('flannelts-')) n++;
    } catch {
      // the thread ended while we looked
    }
  }
  return n;
}

function pair(encap: 'flannel-udp' | 'vxlan'): [EngineRig, EngineRig] {
  const vx = (mac: string) => (encap === 'vxlan' ? { encap, vni: 3, mac, sendSockets: 2 } : {});
  const A = EngineRig.open({ tunOffloads: ALL_TUN_OFFLOADS, address: '127.0.0.1', dataThreads: 2, ...vx('0e:00:00:00:00:0a') });
  const B = EngineRig.open({ tunOffloads: ALL_TUN_OFFLOADS, address: '127.0.0.2', port: A.port, ...vx('0e:00:00:00:00:0b') });
  const mac = (m: string) => (encap === 'vxlan' ? m : undefined);
  A.engine.setPeers([B.route('198.19.2.0/24', mac('0e:00:00:00:00:0b'))]);
  B.engine.setPeers([A.route('198.19.1.0/24', mac('0e:00:00:00:00:0a'))]);
  A.engine.start();
  B.engine.start();
  return [A, B];
}

const segment = (i: number, from: number, to: number): Buffer =>
  withL4Checksum(ipv4({ src: `198.19.${from}.2`, dst: `198.19.${to}.3`, proto: 6, payload: tcp({ srcPort: 40000 + from, dstPort: 5201, seq: i * 1400, data: pattern(1400, i) }) }));

/** Waits until read() gives the same value twice, 100 ms apart (at most 5 s); returns it. */
async function settled(read: () => number): Promise<number> {
  let last = read();
  for (let i = 0; i < 50; i++) {
    await sleep(100);
    const now = read();
    if (now === last) return now;
    last = now;
  }
  throw new Error('never settled');
}

for (const encap of ['flannel-udp', 'vxlan'] as const) {
  test(`${encap}: close() while both directions carry traffic joins the threads; the other engine goes on`, async () => {
    const before = engineThreads();
    const [A, B] = pair(encap);
    assert.equal(engineThreads(), before + 4, 'two data threads per engine');
    let pumping = true;
    // Both directions busy: A's TUN feeds B, B's TUN feeds A, a few hundred packets per turn.
    const pump = (async () => {
      for (let i = 0; pumping; i++) {
        for (let k = 0; k < 50 && pumping; k++) {
          A.send(segment(i * 50 + k, 1, 2));
          B.send(segment(i * 50 + k, 2, 1));
        }
        await yieldLoop();
      }
    })();
    assert.ok(await until(() => B.stats().rx.packets > 500 && A.stats().rx.packets > 500), 'traffic flows both ways');
    A.engine.close();
    assert.equal(engineThreads(), before + 2, "A's threads are joined");
    assert.throws(() => A.engine.setPeers([]), /closed/);
    assert.throws(() => A.engine.start(), /closed/);
    const frozen = A.stats();
    assert.ok(frozen.tx.packets > 0 && frozen.rx.packets > 0, 'counters stay readable after close');
    pumping = false;
    await pump;
    // B still works: it drains what is queued and sends on (to a closed socket, gone on arrival).
    const sent = await settled(() => B.stats().tx.packets);
    B.send(segment(1, 2, 1));
    assert.ok(await until(() => B.stats().tx.packets === sent + 1), 'B sends after A is gone');
    B.engine.close();
    assert.equal(engineThreads(), before, "B's threads are joined");
    for (const r of [A, B]) r.close();
  });
}

test('close() before start(), twice, and with packets queued in the TUN', () => {
  const before = engineThreads();
  const idle = EngineRig.open({ tunOffloads: ALL_TUN_OFFLOADS });
  idle.close();
  idle.engine.close();
  const busy = EngineRig.open({ tunOffloads: ALL_TUN_OFFLOADS });
  busy.engine.setPeers([{ subnet: '198.19.2.0/24', publicIP: '127.0.0.2', port: 9 }]);
  for (let i = 0; i < 200; i++) busy.send(ipv4({ src: '198.19.1.2', dst: '198.19.2.3', proto: 1, payload: icmpEcho(8, 1, i, pattern(64)) }));
  busy.engine.start();
  busy.close();
  assert.equal(engineThreads(), before);
});
