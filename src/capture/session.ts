// The daemon's side of one `flannelctl capture`: starts the engine's capture, polls it (every 100 ms,
// never a per-packet call), encodes what it gathered as pcap and hands the bytes to the connection,
// and stops the engine's capture when the count or the duration is reached, the client goes away or
// the engine closes. When it ends, the engine holds no capture buffer any more (no cost when off).
import type { CaptureChunk, CaptureFilter } from '../native/engine.js';
import { VERSION } from '../version.js';
import { toEngineFilter, type CaptureRequest } from './options.js';
import { pcapEncoder } from './pcap.js';
import { decodeRecords } from './records.js';

/** What a running network offers for captures (the udp backend's engine). */
export interface CaptureSource {
  /** The device the packets pass through, for the pcap interface name. */
  readonly device: string;
  /** Drop reason names in the engine's order. */
  readonly reasons: readonly string[];
  start(f: CaptureFilter): void;
  read(): CaptureChunk;
  stop(): CaptureChunk;
}

/** Where the session writes: the connection. backlog() is what is queued but not yet sent. */
export interface CaptureOutput {
  write(b: Buffer): void;
  backlog(): number;
}

export type CaptureEnd = 'count' | 'duration' | 'closed' | 'engine';

export interface CaptureSummary {
  packets: number;
  lost: number;
  end: CaptureEnd;
}

/**
 * A slow reader must not grow the daemon's memory: past this backlog the session stops draining, the
 * engine's bounded buffer fills and counts what it cannot keep as lost.
 */
const MAX_BACKLOG_BYTES = 8 << 20;

export class CaptureSession {
  private packets = 0;
  private lost = 0;
  private poller?: NodeJS.Timeout;
  private timer?: NodeJS.Timeout;
  private ended?: CaptureSummary;
  private resolveDone!: (s: CaptureSummary) => void;
  readonly done = new Promise<CaptureSummary>((r) => (this.resolveDone = r));
  private readonly encoder: ReturnType<typeof pcapEncoder>;

  constructor(
    private readonly src: CaptureSource,
    private readonly req: CaptureRequest,
    private readonly out: CaptureOutput,
    private readonly pollMs = 100,
  ) {
    this.encoder = pcapEncoder(req.format, { snaplen: req.snaplen, device: src.device, application: `flannelts ${VERSION}` });
  }

  /** Starts the engine's capture (throws when one already runs) and writes the file header. */
  start(): void {
    this.src.start(toEngineFilter(this.req));
    this.out.write(this.encoder.header);
    this.poller = setInterval(() => this.poll(), this.pollMs);
    if (this.req.durationSec !== undefined) this.timer = setTimeout(() => this.finish('duration'), this.req.durationSec * 1000);
  }

  private poll(): void {
    if (this.out.backlog() > MAX_BACKLOG_BYTES) return;
    let chunk: CaptureChunk;
    try {
      chunk = this.src.read();
    } catch {
      this.finish('engine'); // the engine closed under us (daemon shutting down)
      return;
    }
    this.emit(chunk);
    if (!chunk.active) this.finish('engine');
  }

  private emit(chunk: CaptureChunk): void {
    this.lost = chunk.lost;
    const limit = this.req.count ?? Infinity;
    const parts: Buffer[] = [];
    for (const r of decodeRecords(chunk.records, this.src.reasons)) {
      if (this.packets >= limit) break;
      parts.push(this.encoder.packet(r));
      this.packets++;
    }
    if (parts.length) this.out.write(Buffer.concat(parts));
    if (this.packets >= limit) this.finish('count');
  }

  /** Ends the session (idempotent); 'closed' (client gone) writes nothing more. */
  finish(end: CaptureEnd): CaptureSummary {
    if (this.ended) return this.ended;
    this.ended = { packets: 0, lost: 0, end };
    clearInterval(this.poller);
    clearTimeout(this.timer);
    let last: CaptureChunk | undefined;
    try {
      last = this.src.stop();
    } catch {
      // engine already closed: its capture went with it
    }
    if (last && end !== 'closed') this.emit(last);
    this.ended = { packets: this.packets, lost: last?.lost ?? this.lost, end };
    this.resolveDone(this.ended);
    return this.ended;
  }
}
