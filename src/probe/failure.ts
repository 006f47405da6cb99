// One reason and one line per failed echo, from the facts the native prober reports (ICMP type and
// code and who sent it, or the errno of sendto). Pure, so the wording is unit-tested without root.

export type FailureReason =
  | 'timeout' // no answer within timeoutMs
  | 'unreachable' // ICMP destination unreachable, or the local route says so (EHOSTUNREACH)
  | 'time-exceeded' // TTL / hop limit ran out on the way (a routing loop) or reassembly timed out
  | 'packet-too-big' // ICMP fragmentation needed / ICMPv6 packet too big
  | 'parameter-problem'
  | 'no-route' // sendto failed with ENETUNREACH: nothing in the sender's table leads there
  | 'send-error' // sendto failed with another errno (named in the detail)
  | 'stopped'; // still waiting when the run ended early (abort, stopAfterReplies/Failures)

/** A failure as native/js/prober.cc reports it. */
export interface RawFailure {
  seq: number;
  kind: 'timeout' | 'icmp' | 'send' | 'stopped';
  sentAtNs: number;
  type?: number;
  code?: number;
  from?: string;
  mtu?: number;
  errno?: string;
  message?: string;
}

// RFC 792 / RFC 1812 destination-unreachable codes.
const V4_UNREACHABLE = [
  'net unreachable',
  'host unreachable',
  'protocol unreachable',
  'port unreachable',
  'fragmentation needed',
  'source route failed',
  'destination network unknown',
  'destination host unknown',
  'source host isolated',
  'network administratively prohibited',
  'host administratively prohibited',
  'network unreachable for TOS',
  'host unreachable for TOS',
  'communication administratively prohibited',
  'host precedence violation',
  'precedence cutoff in effect',
];
// RFC 4443 3.1.
const V6_UNREACHABLE = [
  'no route to destination',
  'communication administratively prohibited',
  'beyond scope of source address',
  'address unreachable',
  'port unreachable',
  'source address failed ingress/egress policy',
  'reject route to destination',
];
const TIME_EXCEEDED = { 4: ['TTL exceeded in transit', 'fragment reassembly time exceeded'], 6: ['hop limit exceeded in transit', 'fragment reassembly time exceeded'] };
const PARAMETER_PROBLEM = { 4: ['pointer indicates the error', 'missing a required option', 'bad length'], 6: ['erroneous header field', 'unrecognized next header', 'unrecognized IPv6 option'] };

const codeName = (names: readonly string[], code: number): string => names[code] ?? `code ${code}`;

function icmpFailure(family: 4 | 6, type: number, code: number, from: string, mtu: number | undefined): { reason: FailureReason; detail: string } {
  const proto = family === 4 ? 'ICMP' : 'ICMPv6';
  const say = (what: string, why: string): string => `${proto} ${what} (${why}) from ${from}`;
  const withMtu = (s: string): string => (mtu ? `${s}, MTU ${mtu}` : s);
  if (family === 4 && type === 3 && code === 4) return { reason: 'packet-too-big', detail: say('destination unreachable', withMtu('fragmentation needed')) };
  if (family === 6 && type === 2) return { reason: 'packet-too-big', detail: `${proto} packet too big${mtu ? ` (MTU ${mtu})` : ''} from ${from}` };
  if ((family === 4 && type === 3) || (family === 6 && type === 1)) {
    return { reason: 'unreachable', detail: say('destination unreachable', codeName(family === 4 ? V4_UNREACHABLE : V6_UNREACHABLE, code)) };
  }
  if ((family === 4 && type === 11) || (family === 6 && type === 3)) return { reason: 'time-exceeded', detail: say('time exceeded', codeName(TIME_EXCEEDED[family], code)) };
  if ((family === 4 && type === 12) || (family === 6 && type === 4)) return { reason: 'parameter-problem', detail: say('parameter problem', codeName(PARAMETER_PROBLEM[family], code)) };
  // The native filter passes no other type; should one come, it is still named rather than lost.
  return { reason: 'unreachable', detail: `${proto} type ${type} code ${code} from ${from}` };
}

/** The reason and the one-line detail for a failed echo to target. */
export function describeFailure(f: RawFailure, family: 4 | 6, target: string, timeoutMs: number): { reason: FailureReason; detail: string } {
  switch (f.kind) {
    case 'timeout':
      return { reason: 'timeout', detail: `no reply from ${target} within ${timeoutMs} ms` };
    case 'stopped':
      return { reason: 'stopped', detail: 'still waiting for a reply when the probe stopped' };
    case 'icmp':
      return icmpFailure(family, f.type ?? -1, f.code ?? -1, f.from ?? '?', f.mtu);
    case 'send': {
      const errno = f.errno ?? 'unknown errno';
      const sys = `sendto: ${errno}${f.message ? ` (${f.message})` : ''}`;
      if (errno === 'ENETUNREACH') return { reason: 'no-route', detail: `no route to ${target} (${sys})` };
      if (errno === 'EHOSTUNREACH') return { reason: 'unreachable', detail: `the route to ${target} is unreachable (${sys})` };
      return { reason: 'send-error', detail: sys };
    }
  }
}
