// How long this machine takes to wake a sleeping thread: two threads ping-pong through futexes
// (Atomics.wait/notify), one sleeping while the other runs, like the engine's TX/RX threads that sleep
// in poll() between packets. A ping through the udp backend crosses three such wake-ups (sender's TX
// thread, receiver's RX thread, sender's RX thread); kernel vxlan crosses none (softirq in the
// sender's context), which is where most of the RTT gap in `flannelctl bench` comes from.
//   npm run bench:wakeup
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

const ROUNDS = 20_000;
/** Rounds with an idle gap first: the other vCPU has gone idle (halted), as between two pings. */
const IDLE_ROUNDS = 500;
const IDLE_GAP_MS = 5;

function quantiles(samples: number[]): string {
  samples.sort((a, b) => a - b);
  const q = (p: number): number => samples[Math.min(samples.length - 1, Math.floor(p * samples.length))]!;
  return `p50 ${q(0.5).toFixed(1)} us, p90 ${q(0.9).toFixed(1)} us, p99 ${q(0.99).toFixed(1)} us`;
}

if (isMainThread) {
  const sab = new SharedArrayBuffer(8);
  const flag = new Int32Array(sab);
  const w = new Worker(new URL(import.meta.url), { workerData: sab });
  await new Promise<void>((r) => w.once('online', () => r()));
  const round = (): number => {
    // The worker is blocked in Atomics.wait: this measures waking a sleeping thread, not a spinning one.
    const t0 = process.hrtime.bigint();
    Atomics.store(flag, 0, 1);
    Atomics.notify(flag, 0);
    Atomics.wait(flag, 0, 1);
    return Number(process.hrtime.bigint() - t0) / 1000;
  };
  const busy: number[] = [];
  for (let i = 0; i < ROUNDS; i++) busy.push(round());
  const idle: number[] = [];
  for (let i = 0; i < IDLE_ROUNDS; i++) {
    await new Promise((r) => setTimeout(r, IDLE_GAP_MS));
    idle.push(round());
  }
  Atomics.store(flag, 0, -1);
  Atomics.notify(flag, 0);
  await w.terminate();
  process.stdout.write(`thread wake-up round trip (2 wake-ups), back to back, ${ROUNDS} rounds: ${quantiles(busy)}\n`);
  process.stdout.write(`thread wake-up round trip (2 wake-ups), after ${IDLE_GAP_MS} ms idle, ${IDLE_ROUNDS} rounds: ${quantiles(idle)}\n`);
} else {
  const flag = new Int32Array(workerData as SharedArrayBuffer);
  parentPort?.postMessage('ready');
  for (;;) {
    Atomics.wait(flag, 0, 0);
    if (Atomics.load(flag, 0) === -1) break;
    Atomics.store(flag, 0, 0);
    Atomics.notify(flag, 0);
  }
}
