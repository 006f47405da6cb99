// klog-style logging, the shape flanneld users grep for:
//   I1124 00:33:32.998436   13440 daemon.ts:120] Allocated lease ...
// JSON lines with setLogFormat('json'). Verbosity like klog's -v: log.v(2).info(...).
import { basename } from 'node:path';

export type Severity = 'I' | 'W' | 'E' | 'F';
export type LogFormat = 'text' | 'json';

interface LogState {
  verbosity: number;
  format: LogFormat;
  sink: (line: string) => void;
}

const state: LogState = {
  verbosity: 0,
  format: 'text',
  sink: (line) => process.stderr.write(line + '\n'),
};

export function setVerbosity(v: number): void {
  state.verbosity = v;
}
export function getVerbosity(): number {
  return state.verbosity;
}
export function setLogFormat(f: LogFormat): void {
  state.format = f;
}
/** Redirects log output (tests capture lines with this). Returns the previous sink. */
export function setLogSink(sink: (line: string) => void): (line: string) => void {
  const prev = state.sink;
  state.sink = sink;
  return prev;
}

const pad = (n: number, w = 2): string => String(n).padStart(w, '0');

/** Caller as `file.ts:line`, found from the stack; logging is never on a hot path. */
function caller(depth: number): string {
  // Only the frames up to the caller: formatting V8's default 10 frames per line was most of a log
  // line's cost when 1,000 leases are logged at start-up or 100 lease events/s arrive.
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = depth + 1;
  const stack = new Error().stack?.split('\n') ?? [];
  Error.stackTraceLimit = limit;
  const frame = stack[depth + 1] ?? '';
  const m = /([^/\s(]+\.[jt]s):(\d+):\d+\)?$/.exec(frame);
  if (!m) return 'unknown:0';
  return `${basename(m[1] ?? 'unknown').replace(/\.js$/, '.ts')}:${m[2]}`;
}

export function formatKlog(sev: Severity, when: Date, pid: number, where: string, msg: string): string {
  const ts =
    `${pad(when.getMonth() + 1)}${pad(when.getDate())} ` +
    `${pad(when.getHours())}:${pad(when.getMinutes())}:${pad(when.getSeconds())}.` +
    `${pad(when.getMilliseconds(), 3)}000`;
  return `${sev}${ts} ${String(pid).padStart(7)} ${where}] ${msg}`;
}

const levelName: Record<Severity, string> = { I: 'info', W: 'warning', E: 'error', F: 'fatal' };

function emit(sev: Severity, msg: string, fields?: Record<string, unknown>): void {
  const where = caller(3);
  const now = new Date();
  if (state.format === 'json') {
    state.sink(JSON.stringify({ ts: now.toISOString(), level: levelName[sev], caller: where, msg, ...fields }));
  } else {
    const extra = fields
      ? ' ' + Object.entries(fields).map(([k, v]) => `${k}=${typeof v === 'string' ? JSON.stringify(v) : String(v)}`).join(' ')
      : '';
    state.sink(formatKlog(sev, now, process.pid, where, msg + extra));
  }
}

export interface Logger {
  info(msg: string, fields?: Record<string, unknown>): void;
  warning(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

const enabled: Logger = {
  info: (m, f) => emit('I', m, f),
  warning: (m, f) => emit('W', m, f),
  error: (m, f) => emit('E', m, f),
};
const silent: Logger = { info: () => {}, warning: () => {}, error: () => {} };

export const log = {
  ...enabled,
  /** klog's V(level): logs only when -v is at least `level`. */
  v(level: number): Logger {
    return state.verbosity >= level ? enabled : silent;
  },
};

/**
 * Logs at most `burst` lines per `intervalMs` for one key; the rest are counted and summarised
 * in the next line that gets through, so bad traffic cannot cause a log storm.
 */
export class RateLimitedLog {
  private windowStart = 0;
  private emitted = 0;
  private suppressed = 0;
  constructor(
    private readonly burst = 5,
    private readonly intervalMs = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  warning(msg: string): void {
    const t = this.now();
    if (t - this.windowStart >= this.intervalMs) {
      this.windowStart = t;
      this.emitted = 0;
    }
    if (this.emitted >= this.burst) {
      this.suppressed++;
      return;
    }
    this.emitted++;
    const note = this.suppressed > 0 ? ` (${this.suppressed} similar messages suppressed)` : '';
    this.suppressed = 0;
    emit('W', msg + note);
  }
}
