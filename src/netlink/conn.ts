// Request/response over a netlink transport: sequence numbers, ACKs, multipart dumps, errors.
// Every request carries NLM_F_ACK so success is confirmed, not assumed; replies for other sequence
// numbers (late answers to a timed-out request) are skipped rather than misattributed.
import { NLM_F_ACK, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR, NLMSG_NOOP, NLMSG_OVERRUN } from './constants.js';
import { decodeError, decodeMessages, encodeMessage, errnoName, type NlMessage } from './codec.js';
import { NetlinkError } from './errors.js';
import type { NetlinkTransport } from './socket.js';

export interface ConnOptions {
  /** Per-datagram wait; the kernel answers rtnetlink at once, so this only bounds a wedged socket. */
  timeoutMs?: number;
  /** Sees every request and reply datagram (fixture recording, debugging). */
  tap?: (dir: 'send' | 'recv', buf: Buffer) => void;
}

const DUMP_RETRIES = 5;

/** What a request does, for error messages; a function when naming it costs a lookup (device names). */
export type OpName = string | (() => string);
const nameOf = (op: OpName): string => (typeof op === 'string' ? op : op());

export class NetlinkConn {
  private seq: number;
  private readonly timeoutMs: number;
  private readonly tap: ConnOptions['tap'];

  constructor(
    readonly transport: NetlinkTransport,
    opts: ConnOptions = {},
  ) {
    this.timeoutMs = opts.timeoutMs ?? 5000;
    this.tap = opts.tap;
    // Start from the clock so a restarted process does not reuse the previous run's sequence numbers.
    this.seq = Math.floor(Date.now() / 1000) >>> 0;
  }

  close(): void {
    this.transport.close();
  }

  /** A request acknowledged by the kernel; returns any data messages sent before the ACK. */
  request(type: number, flags: number, body: Buffer, op: OpName): NlMessage[] {
    return this.exchange(type, NLM_F_REQUEST | NLM_F_ACK | flags, body, op).messages;
  }

  /** A dump (NLM_F_DUMP); restarted when the kernel marks it interrupted by a concurrent change. */
  dump(type: number, body: Buffer, op: OpName): NlMessage[] {
    for (let attempt = 0; ; attempt++) {
      const r = this.exchange(type, NLM_F_REQUEST | NLM_F_DUMP, body, op);
      if (!r.interrupted) return r.messages;
      if (attempt + 1 >= DUMP_RETRIES) throw new NetlinkError(nameOf(op), 'EINTR', 0, `dump interrupted ${DUMP_RETRIES} times`);
    }
  }

  private exchange(type: number, flags: number, body: Buffer, opName: OpName): { messages: NlMessage[]; interrupted: boolean } {
    const op = (): string => nameOf(opName);
    const seq = (this.seq = (this.seq + 1) >>> 0);
    const req = encodeMessage({ type, flags, seq, pid: 0 }, body);
    this.tap?.('send', req);
    try {
      this.transport.send(req);
    } catch (e) {
      throw transportError(op(), e);
    }
    const messages: NlMessage[] = [];
    let interrupted = false;
    const isDump = (flags & NLM_F_DUMP) === NLM_F_DUMP;
    for (;;) {
      let dgram: Buffer | null;
      try {
        dgram = this.transport.recv(this.timeoutMs);
      } catch (e) {
        throw transportError(op(), e);
      }
      if (dgram === null) throw new NetlinkError(op(), 'ETIMEDOUT', 0, `no reply within ${this.timeoutMs} ms`);
      this.tap?.('recv', dgram);
      const parsed = decodeMessages(dgram);
      if (!parsed.ok) throw new NetlinkError(op(), 'EBADMSG', 0, parsed.error);
      for (const m of parsed.value) {
        if (m.seq !== seq) continue;
        if (m.flags & NLM_F_DUMP_INTR) interrupted = true;
        if (m.type === NLMSG_NOOP || m.type === NLMSG_OVERRUN) continue;
        if (m.type === NLMSG_DONE) {
          // A dump that failed part-way ends with DONE carrying a negative errno instead of 0.
          const status = m.payload.length >= 4 ? m.payload.readInt32LE(0) : 0;
          if (status < 0) throw new NetlinkError(op(), errnoName(-status), -status);
          return { messages, interrupted };
        }
        if (m.type === NLMSG_ERROR) {
          const ack = decodeError(m);
          if (!ack.ok) throw new NetlinkError(op(), 'EBADMSG', 0, ack.error);
          if (ack.value.errno !== 0) throw new NetlinkError(op(), ack.value.code, ack.value.errno, ack.value.extMessage);
          // A plain ACK ends a request. (A dump ends with NLMSG_DONE, never with an ACK.)
          if (!isDump) return { messages, interrupted };
          continue;
        }
        messages.push(m);
      }
    }
  }
}

function transportError(op: string, e: unknown): NetlinkError {
  const err = e as { code?: unknown; errno?: unknown; message?: unknown };
  const code = typeof err.code === 'string' ? err.code : 'EIO';
  const errno = typeof err.errno === 'number' ? err.errno : 0;
  return new NetlinkError(op, code, errno, typeof err.message === 'string' ? err.message : String(e));
}
