// The soak's pod-to-pod echo prober, behind one small function (startEchoProber) so that the native
// ICMP prober (src/probe/) can replace it: today it runs iputils `ping` in the pod's namespace and reads
// its timestamped output. Every echo is reported once, by the time it was sent: answered within 1 s, or
// lost. Echoes ping never reports (a sequence number skipped) count as lost too.
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Namespace } from '../../lab/netns.js';

export interface EchoResult {
  /** Unix ms when the echo request was sent. */
  sentAt: number;
  ok: boolean;
}

export interface EchoProber {
  /** Stops probing; echoes still waiting for their answer when it stops are not reported. */
  stop(): Promise<void>;
}

/** An echo counts as answered only if the answer came within this. */
export const ECHO_TIMEOUT_MS = 1000;

/**
 * Turns ping's `-D -O` lines into one result per sequence number. Time is ping's own (the line
 * timestamps), so a busy reader that sees lines late misjudges nothing.
 */
export class PingAccounting {
  /** Sequence numbers seen but not answered yet, with their send time. */
  private readonly pending = new Map<number, number>();
  private maxSeq = 0;
  private maxSentAt = 0;
  private latest = 0;

  constructor(
    private readonly intervalMs: number,
    private readonly emit: (r: EchoResult) => void,
  ) {}

  line(text: string): void {
    const m = /^\[(\d+(?:\.\d+)?)\] (.*)$/.exec(text);
    if (!m) return;
    const at = Number(m[1]) * 1000;
    const rest = m[2] ?? '';
    this.latest = Math.max(this.latest, at);
    const seqMatch = /icmp_seq=(\d+)/.exec(rest);
    if (!seqMatch) return;
    const seq = Number(seqMatch[1]);
    const reply = /bytes from .* time=([\d.]+) ms/.exec(rest);
    if (reply) {
      const rtt = Number(reply[1]);
      this.see(seq, at - rtt);
      if (this.pending.delete(seq)) this.emit({ sentAt: at - rtt, ok: rtt <= ECHO_TIMEOUT_MS });
    } else if (/no answer yet/.test(rest)) {
      // Printed when the next request goes out: this one went one interval earlier.
      this.see(seq, at - this.intervalMs);
    } else {
      // "From <router> icmp_seq=N Destination Host Unreachable" and the like: an answer, but no echo reply.
      this.see(seq, at);
      if (this.pending.has(seq)) {
        this.emit({ sentAt: this.pending.get(seq)!, ok: false });
        this.pending.delete(seq);
      }
    }
    this.expire(this.latest);
  }

  /** Registers seq (and any skipped below it) as sent, interpolating send times from this one. */
  private see(seq: number, sentAt: number): void {
    if (seq <= this.maxSeq) return;
    for (let k = this.maxSeq + 1; k <= seq; k++) {
      const t = sentAt - (seq - k) * this.intervalMs;
      // A previous sequence's send time bounds the interpolation (a restarted ping starts at 1 again).
      this.pending.set(k, Math.max(t, this.maxSentAt));
    }
    this.maxSeq = seq;
    this.maxSentAt = sentAt;
  }

  /** Echoes older than the timeout (by ping's clock, plus one interval of slack for output order) are lost. */
  expire(now: number): void {
    for (const [seq, sentAt] of this.pending) {
      if (now - sentAt > ECHO_TIMEOUT_MS + 2 * this.intervalMs) {
        this.pending.delete(seq);
        this.emit({ sentAt, ok: false });
      }
    }
  }

  /** At the end: what has waited longer than the timeout is lost, the rest is not reported. */
  finish(now: number): void {
    for (const [, sentAt] of this.pending) if (now - sentAt > ECHO_TIMEOUT_MS) this.emit({ sentAt, ok: false });
    this.pending.clear();
  }
}

/**
 * Sends one echo every `intervalMs` from `from` to `target` and reports each one's outcome. A ping that
 * exits is started again; the echoes it could not send meanwhile are reported lost.
 */
export function startEchoProber(from: Namespace, target: string, intervalMs: number, onResult: (r: EchoResult) => void): EchoProber {
  let stopped = false;
  let child: ChildProcess | undefined;
  let acc: PingAccounting | undefined;
  let done: Promise<void> = Promise.resolve();
  const run = (): void => {
    if (stopped) return;
    acc = new PingAccounting(intervalMs, onResult);
    const a = acc;
    const startedAt = Date.now();
    const c = from.spawn('ping', ['-n', '-D', '-O', '-i', String(intervalMs / 1000), '-W', String(ECHO_TIMEOUT_MS / 1000), target], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    child = c;
    createInterface({ input: c.stdout! }).on('line', (l) => a.line(l));
    done = new Promise<void>((resolve) => {
      c.once('exit', () => {
        a.finish(Date.now());
        resolve();
        if (stopped) return;
        // Not sending is losing: count the echoes of the pause before the restart as lost.
        const restartAt = Date.now() + 1000;
        for (let t = Math.max(startedAt, Date.now()); t < restartAt; t += intervalMs) onResult({ sentAt: t, ok: false });
        setTimeout(run, 1000).unref();
      });
    });
  };
  run();
  return {
    stop: async () => {
      stopped = true;
      child?.kill('SIGINT');
      await done;
    },
  };
}
