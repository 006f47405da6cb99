// flanneld's command line, parsed the way Go's `flag` package parses it (flannel uses it), plus
// flannel's SetFlagsFromEnv: every flag not given on the command line may come from FLANNELD_<NAME>
// (an empty variable is ignored; a bad value is reported and ignored, the flag keeping its default).
// test/fixtures/flannel-v0.28.9-flags.json is flannel's list; a unit test holds ours to it.
//
// Go flag rules reproduced here: `-name`, `--name`, `-name=value`, `-name value` (not for booleans),
// booleans take only `-name` or `-name=bool`; parsing stops at `--` or the first non-flag argument;
// repeated scalar flags keep the last value; list flags (-iface, -iface-regex) append.
import { DEFAULT_REPLY_POLL_US, MAX_REPLY_POLL_US, type DataPlaneSettings } from './dataplane.js';

export type FlagKind = 'string' | 'bool' | 'int' | 'list';

export interface FlagSpec {
  readonly name: string;
  readonly kind: FlagKind;
  readonly def: string | boolean | number | readonly string[];
  readonly usage: string;
  /** Set when the flag is parsed but its feature is not built yet; startup says so. */
  readonly notImplemented?: 'fatal' | 'warn';
}

const S = (name: string, def: string, usage: string, notImplemented?: FlagSpec['notImplemented']): FlagSpec => ({ name, kind: 'string', def, usage, notImplemented });
const B = (name: string, def: boolean, usage: string, notImplemented?: FlagSpec['notImplemented']): FlagSpec => ({ name, kind: 'bool', def, usage, notImplemented });
const I = (name: string, def: number, usage: string, notImplemented?: FlagSpec['notImplemented']): FlagSpec => ({ name, kind: 'int', def, usage, notImplemented });
const L = (name: string, usage: string): FlagSpec => ({ name, kind: 'list', def: [], usage });

/** flanneld's flags in flannel's order, then klog's copied flags, then our extensions. */
export const FLANNELD_FLAGS: readonly FlagSpec[] = [
  S('etcd-endpoints', 'http://127.0.0.1:4001,http://127.0.0.1:2379', 'a comma-delimited list of etcd endpoints'),
  S('etcd-prefix', '/coreos.com/network', 'etcd prefix'),
  S('etcd-keyfile', '', 'SSL key file used to secure etcd communication'),
  S('etcd-certfile', '', 'SSL certification file used to secure etcd communication'),
  S('etcd-cafile', '', 'SSL Certificate Authority file used to secure etcd communication'),
  S('etcd-username', '', 'username for BasicAuth to etcd'),
  S('etcd-password', '', 'password for BasicAuth to etcd'),
  L('iface', 'interface to use (IP or name) for inter-host communication. Can be specified multiple times to check each option in order. Returns the first match found.'),
  L('iface-regex', 'regex expression to match the first interface to use (IP or name) for inter-host communication. Can be specified multiple times to check each regex in order. Returns the first match found. Regexes are checked after specific interfaces specified by the iface option have already been checked.'),
  S('iface-can-reach', '', "detect interface to use (IP or name) for inter-host communication based on which will be used for provided IP. This is exactly the interface to use of command 'ip route get <ip-address>'"),
  S('subnet-file', '/run/flannel/subnet.env', 'filename where env variables (subnet, MTU, ... ) will be written to'),
  S('public-ip', '', 'IP accessible by other nodes for inter-host communication'),
  S('public-ipv6', '', 'IPv6 accessible by other nodes for inter-host communication'),
  I('subnet-lease-renew-margin', 60, 'subnet lease renewal margin, in minutes, ranging from 1 to 1439'),
  B('ip-masq', false, 'setup IP masquerade rule for traffic destined outside of overlay network'),
  B('ip-masq-fully-random-disable', false, 'disable fully-random mode for MASQUERADE'),
  B('kube-subnet-mgr', false, 'contact the Kubernetes API for subnet assignment instead of etcd.'),
  S('kube-api-url', '', 'Kubernetes API server URL. Does not need to be specified if flannel is running in a pod.'),
  S('kube-annotation-prefix', 'flannel.alpha.coreos.com', 'Kubernetes annotation prefix. Can contain single slash "/", otherwise it will be appended at the end.'),
  S('kubeconfig-file', '', 'kubeconfig file location. Does not need to be specified if flannel is running in a pod.'),
  B('version', false, 'print version and exit'),
  S('healthz-ip', '0.0.0.0', 'the IP address for healthz server to listen'),
  I('healthz-port', 0, 'the port for healthz server to listen(0 to disable)'),
  I('iptables-resync', 5, 'resync period for iptables rules, in seconds'),
  B('iptables-forward-rules', true, 'add default accept rules to FORWARD chain in iptables'),
  B('ip-blackhole-route', false, 'add a blackhole route on the node for its own subnet (the local podCIDR), IPv4 and IPv6, re-added every -iptables-resync seconds'),
  S('net-config-path', '/etc/kube-flannel/net-conf.json', 'path to the network configuration file'),
  B('set-node-network-unavailable', true, 'set NodeNetworkUnavailable after ready'),
  // klog flags flannel copies onto its own flag set.
  I('v', 0, 'number for the log level verbosity'),
  S('vmodule', '', 'comma-separated list of pattern=N settings for file-filtered logging', 'warn'),
  // klog's traceLocation prints ":0" when unset, which Go records as the default.
  S('log_backtrace_at', ':0', 'when logging hits line file:N, emit a stack trace', 'warn'),
  // flannelts extensions.
  S('subnet-store-dir', '', 'flannelts: use the embedded file lease store in this directory instead of etcd (one-host labs)'),
  S('log-format', 'text', 'flannelts: log format, "text" (klog lines) or "json"'),
  S('status-socket', '/run/flannel/flannelts.sock', 'flannelts: Unix socket (root only) that `flannelctl status` reads; "" to disable'),
  B('udp-offload', true, 'flannelts: udp backend offloads (TSO/USO through IFF_VNET_HDR, UDP_SEGMENT, UDP_GRO), each probed at start; false turns them all off (debugging)'),
  I('udp-reply-poll-us', DEFAULT_REPLY_POLL_US, 'flannelts: microseconds the udp/userspace-VXLAN engine keeps polling for the answer after a small send (ping, request/response) instead of sleeping; adaptive, shrinks while nothing answers; 0 turns it off (saves CPU, costs latency)'),
  S('udp-threads', 'auto', 'flannelts: data-plane threads of the udp/userspace-VXLAN engine: "auto" runs both directions on one thread (an answer is read by the thread that delivered the request, no cross-CPU wake-up) and adds a second while both directions are busy; "1" or "2" fix the number (debugging, benchmarks)'),
  B('vxlan-userspace', false, 'flannelts: vxlan backend uses the userspace VXLAN VTEP on this node (no kernel vxlan device); it is also used automatically when the kernel cannot create VXLAN devices'),
  B('br-netfilter-check', true, 'flannelts: in iptables mode exit 1 when br_netfilter is not loaded (/proc/sys/net/bridge/bridge-nf-call-iptables missing), as flanneld >= 0.26 does; false skips the check (hosts whose pods are not on a Linux bridge, e.g. flannelctl lab)'),
  B('wireguard-userspace', false, 'flannelts: wireguard backend uses userspace WireGuard on this node even when the kernel has WireGuard; it is also used automatically when the kernel cannot create WireGuard devices'),
  I('watch-liveness-seconds', 15, 'flannelts: liveness bound of the lease watch (etcd and kube): a watch found dead (keepalive timeout, failed probe, no answer, idle stream) is replaced within this many seconds of the fault\'s end; keepalive, probe and deadlines are derived from it'),
  I('etcd-relist-seconds', 300, 'flannelts: etcd mode re-lists every lease this often (jittered by ±25 %), so an event a watch missed heals within one period; 0 turns it off'),
];

/** flannelts' own flags: everything after flannel's list and klog's copied flags (the flags unit test pins this list). */
export const FLANNELTS_EXTENSIONS: readonly string[] = [
  'subnet-store-dir',
  'log-format',
  'status-socket',
  'udp-offload',
  'udp-reply-poll-us',
  'udp-threads',
  'vxlan-userspace',
  'br-netfilter-check',
  'wireguard-userspace',
  'watch-liveness-seconds',
  'etcd-relist-seconds',
];

export type FlagValue = string | boolean | number | string[];

export interface ParsedFlags {
  /** Every flag's value: explicit flag > FLANNELD_* env > default. */
  values: Map<string, FlagValue>;
  /** Names given on the command line or through the environment. */
  set: Set<string>;
  /** Where each set value came from, for the startup log. */
  source: Map<string, 'flag' | 'env'>;
  help: boolean;
  /**
   * FLANNELD_* values that were rejected and ignored (the flag kept its default), one line each naming
   * the variable: flannel logs these and goes on. toOptions adds the range checks' rejections.
   */
  envErrors: string[];
}

/** A command-line error: flanneld prints it on one line and exits with status 2, as Go's flag does. */
export class FlagError extends Error {
  readonly exitCode = 2;
}

/** Go's strconv.ParseBool. */
export function parseGoBool(s: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(s)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(s)) return false;
  return undefined;
}

/** Go's strconv.ParseInt(s, 0, 64) as flag.Int uses it: decimal, 0x, 0o, 0b, leading 0 octal, underscores. */
export function parseGoInt(s: string): number | undefined {
  const m = /^([+-]?)(0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|0[0-7_]*|[1-9][0-9_]*)$/.exec(s);
  if (!m) return undefined;
  const digits = (m[2] ?? '').replace(/_/g, '');
  // BigInt understands 0x/0o/0b and decimal; Go also reads a bare leading 0 as octal.
  const magnitude = /^0[0-7]+$/.test(digits) ? BigInt('0o' + digits.slice(1)) : BigInt(digits);
  const v = m[1] === '-' ? -magnitude : magnitude;
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) return undefined;
  return Number(v);
}

function envName(flag: string): string {
  return 'FLANNELD_' + flag.toUpperCase().replace(/-/g, '_');
}

function convert(spec: FlagSpec, raw: string, origin: string): string | boolean | number {
  switch (spec.kind) {
    case 'bool': {
      const b = parseGoBool(raw);
      if (b === undefined) throw new FlagError(`invalid boolean value "${raw}" for ${origin}: use true or false`);
      return b;
    }
    case 'int': {
      const n = parseGoInt(raw);
      if (n === undefined) throw new FlagError(`invalid integer value "${raw}" for ${origin}: use a whole number`);
      return n;
    }
    default:
      return raw;
  }
}

/**
 * Parses argv (without node and script) and the environment. Throws FlagError on unknown flags,
 * missing values, bad values and stray arguments.
 */
export function parseFlags(
  argv: readonly string[],
  env: NodeJS.ProcessEnv = {},
  specs: readonly FlagSpec[] = FLANNELD_FLAGS,
): ParsedFlags {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const values = new Map<string, FlagValue>(specs.map((s) => [s.name, Array.isArray(s.def) ? [...s.def] : (s.def as FlagValue)]));
  const set = new Set<string>();
  const source = new Map<string, 'flag' | 'env'>();
  let help = false;
  const envErrors: string[] = [];

  const assign = (spec: FlagSpec, v: string | boolean | number, origin: 'flag' | 'env'): void => {
    if (spec.kind === 'list') {
      const prev = set.has(spec.name) ? (values.get(spec.name) as string[]) : [];
      values.set(spec.name, [...prev, String(v)]);
    } else {
      values.set(spec.name, v);
    }
    set.add(spec.name);
    source.set(spec.name, origin);
  };

  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--') {
      i++;
      break;
    }
    if (arg.length < 2 || arg[0] !== '-') break; // first non-flag argument ends flag parsing
    let body = arg.slice(arg[1] === '-' ? 2 : 1);
    if (body === '' || body[0] === '-' || body[0] === '=') throw new FlagError(`bad flag syntax: ${arg}`);
    let inline: string | undefined;
    const eq = body.indexOf('=');
    if (eq >= 0) {
      inline = body.slice(eq + 1);
      body = body.slice(0, eq);
    }
    if (body === 'help' || body === 'h') {
      help = true;
      continue;
    }
    const spec = byName.get(body);
    if (!spec) throw new FlagError(`flag provided but not defined: -${body}`);
    const origin = `flag -${spec.name}`;
    if (spec.kind === 'bool') {
      assign(spec, inline === undefined ? true : convert(spec, inline, origin), 'flag');
      continue;
    }
    let raw = inline;
    if (raw === undefined) {
      if (i + 1 >= argv.length) throw new FlagError(`flag needs an argument: -${spec.name}`);
      raw = argv[++i] ?? '';
    }
    assign(spec, convert(spec, raw, origin), 'flag');
  }
  if (i < argv.length) {
    throw new FlagError(`unexpected argument "${argv[i]}": flanneld takes only flags (did you mean -${argv[i]}?)`);
  }

  // flannel's SetFlagsFromEnv: only flags not already set on the command line, only non-empty values.
  for (const spec of specs) {
    if (set.has(spec.name)) continue;
    const raw = env[envName(spec.name)];
    if (raw === undefined || raw === '') continue;
    // flannel checks -version before it reads the environment, so FLANNELD_VERSION never prints it.
    if (spec.name === 'version') continue;
    const origin = `environment variable ${envName(spec.name)}`;
    if (spec.kind === 'list') {
      // A list from one environment variable: comma-separated, in order (flannel takes the whole value as one entry).
      for (const part of raw.split(',').map((p) => p.trim()).filter((p) => p !== '')) assign(spec, part, 'env');
      continue;
    }
    try {
      assign(spec, convert(spec, raw, origin), 'env');
    } catch (e) {
      if (!(e instanceof FlagError)) throw e;
      envErrors.push(`${e.message}; ${envName(spec.name)} is ignored, -${spec.name} keeps ${JSON.stringify(values.get(spec.name))}`);
    }
  }
  return { values, set, source, help, envErrors };
}

/** Go flag.PrintDefaults-style help. */
export function formatHelp(prog: string, specs: readonly FlagSpec[] = FLANNELD_FLAGS): string {
  const lines = [`Usage: ${prog} [OPTION]...`];
  for (const s of specs) {
    const typeName = s.kind === 'bool' ? '' : s.kind === 'int' ? ' int' : ' string';
    lines.push(`  -${s.name}${typeName}`);
    let def = '';
    if (s.kind === 'string' && s.def !== '') def = ` (default "${String(s.def)}")`;
    if (s.kind === 'int' && s.def !== 0) def = ` (default ${String(s.def)})`;
    if (s.kind === 'bool' && s.def === true) def = ' (default true)';
    const env = ` [env ${envName(s.name)}]`;
    lines.push(`    \t${s.usage}${def}${env}`);
  }
  return lines.join('\n') + '\n';
}

/** The typed view of flanneld's options the daemon works with. */
export interface FlanneldOptions extends DataPlaneSettings {
  etcdEndpoints: string[];
  etcdPrefix: string;
  etcdKeyfile: string;
  etcdCertfile: string;
  etcdCAFile: string;
  etcdUsername: string;
  etcdPassword: string;
  iface: string[];
  ifaceRegex: string[];
  ifaceCanReach: string;
  subnetFile: string;
  publicIP: string;
  publicIPv6: string;
  subnetLeaseRenewMargin: number;
  ipMasq: boolean;
  ipMasqRandomFullyDisable: boolean;
  kubeSubnetMgr: boolean;
  kubeApiUrl: string;
  kubeAnnotationPrefix: string;
  kubeConfigFile: string;
  version: boolean;
  healthzIP: string;
  healthzPort: number;
  iptablesResync: number;
  iptablesForwardRules: boolean;
  ipBlackholeRoute: boolean;
  netConfigPath: string;
  setNodeNetworkUnavailable: boolean;
  verbosity: number;
  subnetStoreDir: string;
  logFormat: 'text' | 'json';
  statusSocket: string;
  /** flannelts' -br-netfilter-check (iptables mode only). */
  brNetfilterCheck: boolean;
  /** -watch-liveness-seconds: the lease watch's liveness bound. */
  watchLivenessSeconds: number;
  /** -etcd-relist-seconds: period of the full re-list in etcd mode (0: none). */
  etcdRelistSeconds: number;
}

/** Turns parsed flags into options and applies flanneld's range checks (each a one-line error). */
export function toOptions(p: ParsedFlags, specs: readonly FlagSpec[] = FLANNELD_FLAGS): FlanneldOptions {
  /**
   * A value out of range: an error for a command-line flag; from FLANNELD_* it is reported and the
   * default used instead, as flannel ignores an environment value it cannot set.
   */
  const reject = (name: string, msg: string): void => {
    if (p.source.get(name) !== 'env') throw new FlagError(msg);
    const spec = specs.find((s) => s.name === name);
    p.envErrors.push(`${msg}; ${envName(name)} is ignored, -${name} keeps ${JSON.stringify(spec?.def)}`);
    p.values.set(name, Array.isArray(spec?.def) ? [...(spec.def as string[])] : (spec?.def as FlagValue));
  };
  const str = (n: string): string => String(p.values.get(n) ?? '');
  const num = (n: string): number => Number(p.values.get(n) ?? 0);
  const bool = (n: string): boolean => p.values.get(n) === true;
  const list = (n: string): string[] => [...((p.values.get(n) as string[] | undefined) ?? [])];

  let margin = num('subnet-lease-renew-margin');
  if (margin <= 0 || margin >= 24 * 60) {
    reject('subnet-lease-renew-margin', `invalid -subnet-lease-renew-margin ${margin}: must be between 1 and 1439 minutes`);
    margin = num('subnet-lease-renew-margin');
  }
  let port = num('healthz-port');
  if (port < 0 || port > 65535) {
    reject('healthz-port', `invalid -healthz-port ${port}: must be 0 (off) to 65535`);
    port = num('healthz-port');
  }
  let resync = num('iptables-resync');
  if (resync <= 0) {
    reject('iptables-resync', `invalid -iptables-resync ${resync}: must be at least 1 second`);
    resync = num('iptables-resync');
  }
  let v = num('v');
  if (v < 0) {
    reject('v', `invalid -v ${v}: verbosity must be 0 or more`);
    v = num('v');
  }
  let replyPoll = num('udp-reply-poll-us');
  if (!Number.isInteger(replyPoll) || replyPoll < 0 || replyPoll > MAX_REPLY_POLL_US) {
    reject('udp-reply-poll-us', `invalid -udp-reply-poll-us ${replyPoll}: must be an integer from 0 (off) to ${MAX_REPLY_POLL_US} microseconds`);
    replyPoll = num('udp-reply-poll-us');
  }
  let threads = str('udp-threads');
  if (threads !== 'auto' && threads !== '1' && threads !== '2') {
    reject('udp-threads', `invalid -udp-threads "${threads}": use "auto", "1" or "2"`);
    threads = str('udp-threads');
  }
  let logFormat = str('log-format');
  if (logFormat !== 'text' && logFormat !== 'json') {
    reject('log-format', `invalid -log-format "${logFormat}": use "text" or "json"`);
    logFormat = str('log-format');
  }
  let liveness = num('watch-liveness-seconds');
  if (!Number.isInteger(liveness) || liveness < 3 || liveness > 3600) {
    reject('watch-liveness-seconds', `invalid -watch-liveness-seconds ${liveness}: must be 3 to 3600 seconds`);
    liveness = num('watch-liveness-seconds');
  }
  let relist = num('etcd-relist-seconds');
  if (!Number.isInteger(relist) || relist < 0) {
    reject('etcd-relist-seconds', `invalid -etcd-relist-seconds ${relist}: must be 0 (off) or a number of seconds`);
    relist = num('etcd-relist-seconds');
  }
  for (const re of list('iface-regex')) {
    try {
      new RegExp(re);
    } catch (e) {
      reject('iface-regex', `invalid -iface-regex "${re}": ${(e as Error).message}`);
      break;
    }
  }
  const endpoints = str('etcd-endpoints').split(',').map((e) => e.trim()).filter((e) => e !== '');
  if (endpoints.length === 0 && str('subnet-store-dir') === '' && !bool('kube-subnet-mgr')) {
    throw new FlagError('invalid -etcd-endpoints "": give at least one endpoint, e.g. http://127.0.0.1:2379');
  }
  return {
    etcdEndpoints: endpoints,
    etcdPrefix: str('etcd-prefix'),
    etcdKeyfile: str('etcd-keyfile'),
    etcdCertfile: str('etcd-certfile'),
    etcdCAFile: str('etcd-cafile'),
    etcdUsername: str('etcd-username'),
    etcdPassword: str('etcd-password'),
    iface: list('iface'),
    ifaceRegex: list('iface-regex'),
    ifaceCanReach: str('iface-can-reach'),
    subnetFile: str('subnet-file'),
    publicIP: str('public-ip'),
    publicIPv6: str('public-ipv6'),
    subnetLeaseRenewMargin: margin,
    ipMasq: bool('ip-masq'),
    ipMasqRandomFullyDisable: bool('ip-masq-fully-random-disable'),
    kubeSubnetMgr: bool('kube-subnet-mgr'),
    kubeApiUrl: str('kube-api-url'),
    kubeAnnotationPrefix: str('kube-annotation-prefix'),
    kubeConfigFile: str('kubeconfig-file'),
    version: bool('version'),
    healthzIP: str('healthz-ip'),
    healthzPort: port,
    iptablesResync: resync,
    iptablesForwardRules: bool('iptables-forward-rules'),
    ipBlackholeRoute: bool('ip-blackhole-route'),
    netConfigPath: str('net-config-path'),
    setNodeNetworkUnavailable: bool('set-node-network-unavailable'),
    verbosity: v,
    subnetStoreDir: str('subnet-store-dir'),
    logFormat: logFormat as FlanneldOptions['logFormat'],
    statusSocket: str('status-socket'),
    watchLivenessSeconds: liveness,
    etcdRelistSeconds: relist,
    udpOffload: bool('udp-offload'),
    replyPollUs: replyPoll,
    dataThreads: threads === 'auto' ? 0 : threads === '1' ? 1 : 2,
    vxlanUserspace: bool('vxlan-userspace'),
    brNetfilterCheck: bool('br-netfilter-check'),
    wireguardUserspace: bool('wireguard-userspace'),
  };
}

/**
 * Flags whose feature is not built yet and whose value asks for it. 'fatal' ones must stop the daemon
 * (running with another lease store would be wrong); 'warn' ones are announced at startup.
 */
export function unimplementedInUse(p: ParsedFlags, specs: readonly FlagSpec[] = FLANNELD_FLAGS): { fatal: string[]; warn: string[] } {
  const fatal: string[] = [];
  const warn: string[] = [];
  for (const s of specs) {
    if (!s.notImplemented) continue;
    const v = p.values.get(s.name);
    const active = s.kind === 'bool' ? v === true : p.set.has(s.name);
    if (!active) continue;
    (s.notImplemented === 'fatal' ? fatal : warn).push(`-${s.name}`);
  }
  return { fatal, warn };
}
