// What a capture asks for, validated once here for both ends: the CLI (commander argument parsers,
// so a bad value is one clear line) and the daemon (the same checks on the request's query string).
import { formatCIDR, networkOf, parseCIDR, parseIP, parseIPWithPrefix } from '../ip/index.js';
import type { CaptureFilter } from '../native/engine.js';
import { CAPTURE_FORMATS, type CaptureFormat } from './pcap.js';

export const MAX_SNAPLEN = 262144;
export const DEFAULT_SNAPLEN = 65535;
/** A day: longer captures are better done as several files. */
export const MAX_DURATION_SEC = 86400;

export interface CaptureRequest {
  /** CIDRs (addresses as /32 or /128): the peer's public address, its subnet or an inner address must be in one. */
  peers: string[];
  /** Only dropped packets. */
  drops: boolean;
  /** Only drops with these reasons (implies drops). */
  reasons: string[];
  /** Only one side of the engine. */
  direction?: 'tx' | 'rx';
  /** Stop after this many packets. */
  count?: number;
  /** Stop after this many seconds. */
  durationSec?: number;
  snaplen: number;
  format: CaptureFormat;
}

export class CaptureOptionError extends Error {}

/** "198.19.2.0/24", "198.18.0.12" (-> /32), "2001:db8::1"; a CIDR with host bits set is refused (ambiguous). */
export function parsePeer(v: string): string {
  const ip = parseIP(v);
  if (ip) return formatCIDR(networkOf(ip, ip.family === 4 ? 32 : 128));
  const p = parseIPWithPrefix(v);
  const net = parseCIDR(v);
  if (!p || !net) throw new CaptureOptionError(`"${v}" is not a subnet (198.19.2.0/24) or an address (198.18.0.12)`);
  if (net.value !== p.ip.value) throw new CaptureOptionError(`"${v}" has host bits set; did you mean ${formatCIDR(net)}?`);
  return formatCIDR(net);
}

export function parseReason(v: string, known: readonly string[]): string {
  if (!known.includes(v)) throw new CaptureOptionError(`unknown drop reason "${v}" (one of ${known.join(', ')})`);
  return v;
}

function wholeNumber(v: string, what: string, min: number, max: number): number {
  const n = /^\d+$/.test(v) ? Number(v) : NaN;
  if (!(n >= min && n <= max)) throw new CaptureOptionError(`${what} "${v}" must be a whole number from ${min} to ${max}`);
  return n;
}

export const parseCount = (v: string): number => wholeNumber(v, 'count', 1, Number.MAX_SAFE_INTEGER);
export const parseSnaplen = (v: string): number => wholeNumber(v, 'snaplen', 1, MAX_SNAPLEN);

export function parseDuration(v: string): number {
  const n = /^\d+(\.\d+)?$/.test(v) ? Number(v) : NaN;
  if (!(n > 0 && n <= MAX_DURATION_SEC)) throw new CaptureOptionError(`duration "${v}" must be a number of seconds above 0 and at most ${MAX_DURATION_SEC}`);
  return n;
}

export function parseFormat(v: string): CaptureFormat {
  const f = CAPTURE_FORMATS.find((x) => x === v);
  if (!f) throw new CaptureOptionError(`format "${v}" must be one of ${CAPTURE_FORMATS.join(', ')}`);
  return f;
}

export function parseDirection(v: string): 'tx' | 'rx' {
  if (v !== 'tx' && v !== 'rx') throw new CaptureOptionError(`direction "${v}" must be tx or rx`);
  return v;
}

/** The request as the query string of GET /capture. */
export function toQuery(r: CaptureRequest): string {
  const q = new URLSearchParams();
  for (const p of r.peers) q.append('peer', p);
  for (const x of r.reasons) q.append('reason', x);
  if (r.drops) q.set('drops', '1');
  if (r.direction) q.set('direction', r.direction);
  if (r.count !== undefined) q.set('count', String(r.count));
  if (r.durationSec !== undefined) q.set('duration', String(r.durationSec));
  q.set('snaplen', String(r.snaplen));
  q.set('format', r.format);
  return q.toString();
}

/** Parses GET /capture's query; throws CaptureOptionError naming the bad parameter. */
export function fromQuery(q: URLSearchParams, knownReasons: readonly string[]): CaptureRequest {
  const allowed = new Set(['peer', 'reason', 'drops', 'direction', 'count', 'duration', 'snaplen', 'format']);
  for (const k of q.keys()) if (!allowed.has(k)) throw new CaptureOptionError(`unknown capture parameter "${k}"`);
  const one = (k: string): string | undefined => q.get(k) ?? undefined;
  const drops = one('drops');
  if (drops !== undefined && drops !== '1' && drops !== '0') throw new CaptureOptionError(`drops "${drops}" must be 0 or 1`);
  const count = one('count');
  const duration = one('duration');
  const direction = one('direction');
  const snaplen = one('snaplen');
  const format = one('format');
  return {
    peers: q.getAll('peer').map(parsePeer),
    reasons: q.getAll('reason').map((r) => parseReason(r, knownReasons)),
    drops: drops === '1',
    direction: direction === undefined ? undefined : parseDirection(direction),
    count: count === undefined ? undefined : parseCount(count),
    durationSec: duration === undefined ? undefined : parseDuration(duration),
    snaplen: snaplen === undefined ? DEFAULT_SNAPLEN : parseSnaplen(snaplen),
    format: format === undefined ? 'pcapng' : parseFormat(format),
  };
}

/** The engine's filter for a request: --reason implies drops only; the engine stops at count. */
export function toEngineFilter(r: CaptureRequest): CaptureFilter {
  const dropsOnly = r.drops || r.reasons.length > 0;
  return {
    tx: r.direction !== 'rx',
    rx: r.direction !== 'tx',
    traffic: !dropsOnly,
    ...(r.reasons.length ? { reasons: r.reasons } : {}),
    peers: r.peers,
    snaplen: r.snaplen,
    maxPackets: r.count ?? 0,
  };
}

/** One line for the CLI's stderr: what is being captured. */
export function describeRequest(r: CaptureRequest): string {
  const what = r.reasons.length ? `drops (${r.reasons.join(', ')})` : r.drops ? 'drops' : 'packets and drops';
  const parts = [what, r.direction ? `${r.direction} only` : '', r.peers.length ? `peer ${r.peers.join(' or ')}` : ''];
  const bounds = [r.count !== undefined ? `${r.count} packets` : '', r.durationSec !== undefined ? `${r.durationSec} s` : ''].filter(Boolean);
  return `${parts.filter(Boolean).join(', ')}; ${r.format}, snaplen ${r.snaplen}; ${bounds.length ? `stops after ${bounds.join(' or ')}` : 'until interrupted'}`;
}
