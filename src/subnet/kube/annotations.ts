// The node annotations flannel's Kubernetes subnet manager reads and writes (pkg/subnet/kube), as a
// pure codec: annotation names from the prefix, the annotations our node must carry for a lease, a
// node object -> peer lease, and the NodeNetworkUnavailable condition patch. No I/O here, so the exact
// value formats are unit-tested key by key against stock flanneld's.
import { formatIP, parseIP } from '../../ip/addr.js';
import { formatCIDR, parseIPWithPrefix, networkOf } from '../../ip/cidr.js';
import type { IPNet } from '../../ip/types.js';
import type { Lease, LeaseAttrs } from '../types.js';
import { goField, isRecord, parseGoJSON } from '../../util/go-json.js';

export const DEFAULT_ANNOTATION_PREFIX = 'flannel.alpha.coreos.com';

/** A bad -kube-annotation-prefix or other kube-mode setting: fatal at start-up. */
export class KubeConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KubeConfigError';
  }
}

/** A node whose annotations or pod CIDRs cannot make a lease; the message names node and field. */
export class NodeLeaseError extends Error {
  constructor(
    readonly node: string,
    readonly field: string,
    detail: string,
  ) {
    super(`node "${node}": ${field}: ${detail}`);
    this.name = 'NodeLeaseError';
  }
}

export interface AnnotationNames {
  kubeSubnetManager: string;
  backendData: string;
  backendV6Data: string;
  backendType: string;
  publicIP: string;
  publicIPv6: string;
  /** Read by GetStoredPublicIP (flannel main): an operator-pinned address used before interface selection. */
  nodePublicIP: string;
  nodePublicIPv6: string;
  /** Read-only overrides an operator sets; written into public-ip / public-ipv6 instead of ours. */
  publicIPOverwrite: string;
  publicIPv6Overwrite: string;
}

/**
 * flannel's newAnnotations: at most one `/`; none → `/` appended; a prefix with a `/` not at the end gets
 * `-` (so `example.com/flannel` gives `example.com/flannel-backend-data`); then it must look like
 * `fqdn/[a-z0-9_-]*`.
 */
export function annotationNames(prefix: string = DEFAULT_ANNOTATION_PREFIX): AnnotationNames {
  const slashes = prefix.split('/').length - 1;
  if (slashes > 1) {
    throw new KubeConfigError(`invalid -kube-annotation-prefix "${prefix}": it can contain at most a single "/"`);
  }
  let p = slashes === 0 ? `${prefix}/` : prefix;
  if (!p.endsWith('/') && !p.endsWith('-')) p += '-';
  // Anchored, unlike flannel's pattern (which accepts e.g. "Upper.example.com" by matching its tail and
  // then fails at the API server): the API rejects such keys on every PATCH, so refuse them up front.
  if (!/^(?:[a-z0-9_-]+\.)+[a-z0-9_-]+\/(?:[a-z0-9_-]+-)?$/.test(p)) {
    throw new KubeConfigError(
      `invalid -kube-annotation-prefix "${prefix}": it must be a DNS name with an optional "/name" (lowercase letters, digits, "_", "-"), e.g. flannel.alpha.coreos.com`,
    );
  }
  return {
    kubeSubnetManager: `${p}kube-subnet-manager`,
    backendData: `${p}backend-data`,
    backendV6Data: `${p}backend-v6-data`,
    backendType: `${p}backend-type`,
    publicIP: `${p}public-ip`,
    publicIPv6: `${p}public-ipv6`,
    nodePublicIP: `${p}node-public-ip`,
    nodePublicIPv6: `${p}node-public-ipv6`,
    publicIPOverwrite: `${p}public-ip-overwrite`,
    publicIPv6Overwrite: `${p}public-ipv6-overwrite`,
  };
}

/** The parts of a v1.Node this codec looks at (the client library's V1Node fits). */
export interface NodeLike {
  metadata?: { name?: string; annotations?: Record<string, string>; resourceVersion?: string };
  spec?: { podCIDR?: string; podCIDRs?: string[] };
}

/** Go's json.RawMessage.MarshalJSON: nil is `null`, anything else its compact JSON. */
export function backendDataText(data: unknown): string {
  return data === undefined || data === null ? 'null' : JSON.stringify(data);
}

/** Go's ip.IP4.String() for LeaseAttrs.PublicIP: a value type, so unset prints 0.0.0.0. */
function publicIPText(attrs: LeaseAttrs): string {
  return attrs.publicIP ? formatIP(attrs.publicIP) : '0.0.0.0';
}

export interface AnnotationUpdate {
  /** Only the keys whose value changes; empty when the node already carries everything. */
  changes: Record<string, string>;
  /** Log lines flannel prints ("Overriding public ip with ..."). */
  notes: string[];
}

/**
 * What flannel's AcquireLease writes on our node. Nothing is written when the node already matches
 * (flannel skips the PATCH then). Backend data is written for every type except a vxlan lease without
 * data; the v6 keys only for the backends flannel writes them for (plus our dual-stack udp). public-ip is the overwrite annotation
 * when an operator set one, else our address.
 */
export function ownNodeAnnotations(current: Readonly<Record<string, string>>, attrs: LeaseAttrs, names: AnnotationNames): AnnotationUpdate {
  const bd = backendDataText(attrs.backendData);
  const v6bd = backendDataText(attrs.backendV6Data);
  const pub = publicIPText(attrs);
  const pub6 = attrs.publicIPv6 ? formatIP(attrs.publicIPv6) : '';
  const get = (k: string): string => current[k] ?? '';
  const overwrite = get(names.publicIPOverwrite);
  const overwrite6 = get(names.publicIPv6Overwrite);
  const v4Stale =
    get(names.backendData) !== bd ||
    get(names.backendType) !== attrs.backendType ||
    get(names.publicIP) !== pub ||
    get(names.kubeSubnetManager) !== 'true' ||
    (overwrite !== '' && overwrite !== pub);
  const v6Stale =
    attrs.publicIPv6 !== undefined &&
    (get(names.backendV6Data) !== v6bd ||
      get(names.backendType) !== attrs.backendType ||
      get(names.publicIPv6) !== pub6 ||
      get(names.kubeSubnetManager) !== 'true' ||
      (overwrite6 !== '' && overwrite6 !== pub6));
  const notes: string[] = [];
  const next: Record<string, string> = { ...current };
  if (v4Stale || v6Stale) {
    next[names.backendType] = attrs.backendType;
    const type = attrs.backendType;
    if ((type === 'vxlan' && bd !== 'null') || (type === 'wireguard' && bd !== 'null') || type !== 'vxlan') {
      next[names.backendData] = bd;
      if (overwrite !== '') {
        if (get(names.publicIP) !== overwrite) {
          notes.push(`Overriding public ip with '${overwrite}' from node annotation '${names.publicIPOverwrite}'`);
          next[names.publicIP] = overwrite;
        }
      } else {
        next[names.publicIP] = pub;
      }
    }
    const hasV6 = attrs.publicIPv6 !== undefined;
    if (
      (type === 'vxlan' && v6bd !== 'null') ||
      (type === 'wireguard' && v6bd !== 'null' && hasV6) ||
      ((type === 'host-gw' || type === 'extension') && hasV6) ||
      // flannelts extension: flannel's udp is IPv4-only, ours carries IPv6 too, so its peers need these.
      (type === 'udp' && hasV6)
    ) {
      next[names.backendV6Data] = v6bd;
      if (overwrite6 !== '') {
        if (get(names.publicIPv6) !== overwrite6) {
          notes.push(`Overriding public ipv6 with '${overwrite6}' from node annotation '${names.publicIPv6Overwrite}'`);
          next[names.publicIPv6] = overwrite6;
        }
      } else {
        next[names.publicIPv6] = pub6;
      }
    }
    next[names.kubeSubnetManager] = 'true';
  }
  // flannel sends a two-way strategic merge patch of old vs new: exactly the changed keys.
  const changes: Record<string, string> = {};
  for (const [k, v] of Object.entries(next)) if (current[k] !== v) changes[k] = v;
  return { changes, notes };
}

/** The strategic-merge-patch body flannel sends for annotation changes (to the node's status subresource). */
export function annotationPatch(changes: Record<string, string>): { metadata: { annotations: Record<string, string> } } {
  return { metadata: { annotations: changes } };
}

/** Go's metav1.Time JSON: RFC 3339 with second precision, UTC. */
export function kubeTime(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** flannel's CompleteLease body: NodeNetworkUnavailable=False, field order as Go marshals v1.NodeCondition. */
export function networkUnavailablePatch(now: Date): string {
  const t = kubeTime(now);
  const condition = {
    type: 'NetworkUnavailable',
    status: 'False',
    lastHeartbeatTime: t,
    lastTransitionTime: t,
    reason: 'FlannelIsUp',
    message: 'Flannel is running on this node',
  };
  return `{"status":{"conditions":${JSON.stringify([condition])}}}`;
}

export interface PodCIDRs {
  v4?: IPNet;
  v6?: IPNet;
}

/**
 * spec.podCIDRs (or spec.podCIDR when the list is empty), as Go's net.ParseCIDR reads them: host bits
 * cleared, at most one per family. Undefined when nothing is assigned yet.
 */
export function nodePodCIDRs(node: NodeLike): PodCIDRs | undefined {
  const name = node.metadata?.name ?? '?';
  const single: unknown = node.spec?.podCIDR ?? '';
  const list: unknown = node.spec?.podCIDRs ?? [];
  // The node is JSON from the API server: check the shapes rather than trust the declared types.
  if (typeof single !== 'string') throw new NodeLeaseError(name, 'spec.podCIDR', `${JSON.stringify(single)} is not a string`);
  if (!Array.isArray(list) || !list.every((x): x is string => typeof x === 'string')) {
    throw new NodeLeaseError(name, 'spec.podCIDRs', `${JSON.stringify(list)} is not a list of strings`);
  }
  if (single === '' && list.length === 0) return undefined;
  if (list.length > 2) throw new NodeLeaseError(name, 'spec.podCIDRs', `${JSON.stringify(list)}: pod cidrs should be IPv4/IPv6 only or dualstack`);
  const texts = list.length > 0 ? list : [single];
  const field = list.length > 0 ? 'spec.podCIDRs' : 'spec.podCIDR';
  const out: PodCIDRs = {};
  for (const text of texts) {
    const p = parseIPWithPrefix(text);
    if (!p) throw new NodeLeaseError(name, field, `"${text}" is not a CIDR`);
    const net = networkOf(p.ip, p.prefixLen);
    if (net.family === 4) out.v4 ??= net;
    else out.v6 ??= net;
  }
  return out;
}

/** Families the network config enables, which decide what a peer lease must carry. */
export interface Families {
  enableIPv4: boolean;
  enableIPv6: boolean;
}

function parseJSONAnnotation(node: string, key: string, text: string | undefined): unknown {
  // flannel keeps the raw text (json.RawMessage); an absent annotation is no data, like "null".
  if (text === undefined || text === '' || text === 'null') return undefined;
  try {
    // Decoded later into Go structs (vxlanLeaseAttrs...): Go's key rules (util/go-json.ts).
    return parseGoJSON(text);
  } catch (e) {
    throw new NodeLeaseError(node, `annotation ${key}`, `${JSON.stringify(text)} is not JSON (${(e as Error).message})`);
  }
}

/** metadata.annotations as the wire may carry it: an object of strings, or this node is skipped. */
function stringAnnotations(node: string, raw: unknown): Record<string, string> {
  if (raw === undefined || raw === null) return {};
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new NodeLeaseError(node, 'metadata.annotations', 'must be a map of strings');
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (typeof v !== 'string') throw new NodeLeaseError(node, `annotation ${k}`, `${JSON.stringify(v)} is not a string`);
    out[k] = v;
  }
  return out;
}

/**
 * flannel's nodeToLease for another node (the caller has checked kube-subnet-manager == "true"):
 * public IP and backend data per enabled family, subnets from the pod CIDRs, backend type.
 */
export function nodeToLease(node: NodeLike, names: AnnotationNames, families: Families, expiration: Date): Lease {
  const name = node.metadata?.name ?? '?';
  const ann = stringAnnotations(name, node.metadata?.annotations);
  const cidrs = nodePodCIDRs(node);
  if (!cidrs) throw new NodeLeaseError(name, 'spec.podCIDR', 'pod cidr not assigned');
  const attrs: LeaseAttrs = { backendType: ann[names.backendType] ?? '' };
  if (attrs.backendType === '') throw new NodeLeaseError(name, `annotation ${names.backendType}`, 'missing');
  const lease: Lease = { attrs, expiration };
  if (families.enableIPv4) {
    const text = ann[names.publicIP];
    const ip = text === undefined ? undefined : parseIP(text);
    if (!ip || ip.family !== 4) throw new NodeLeaseError(name, `annotation ${names.publicIP}`, text === undefined ? 'missing' : `${JSON.stringify(text)} is not an IPv4 address`);
    attrs.publicIP = ip;
    const data = parseJSONAnnotation(name, names.backendData, ann[names.backendData]);
    if (data !== undefined) attrs.backendData = data;
    if (!cidrs.v4) throw new NodeLeaseError(name, 'spec.podCIDRs', 'missing IPv4 pod cidr');
    lease.subnet = cidrs.v4;
  }
  if (families.enableIPv6) {
    const text = ann[names.publicIPv6];
    const ip = text === undefined ? undefined : parseIP(text);
    if (!ip || ip.family !== 6) throw new NodeLeaseError(name, `annotation ${names.publicIPv6}`, text === undefined ? 'missing' : `${JSON.stringify(text)} is not an IPv6 address`);
    attrs.publicIPv6 = ip;
    const data = parseJSONAnnotation(name, names.backendV6Data, ann[names.backendV6Data]);
    if (data !== undefined) attrs.backendV6Data = data;
    if (!cidrs.v6) throw new NodeLeaseError(name, 'spec.podCIDRs', 'missing IPv6 pod cidr');
    lease.ipv6Subnet = cidrs.v6;
  }
  return lease;
}

/** A lease's identity plus everything a peer uses, to tell a relevant node update from noise. */
export function leaseFingerprint(l: Lease): string {
  const a = l.attrs;
  return JSON.stringify([
    l.subnet ? formatCIDR(l.subnet) : '',
    l.ipv6Subnet ? formatCIDR(l.ipv6Subnet) : '',
    a.backendType,
    a.publicIP ? formatIP(a.publicIP) : '',
    a.publicIPv6 ? formatIP(a.publicIPv6) : '',
    backendDataText(a.backendData),
    backendDataText(a.backendV6Data),
  ]);
}

/** What our node's annotations say our VTEP MACs were (flannel's GetStoredMacAddresses). */
export interface StoredMacs {
  v4?: string;
  v6?: string;
}

/**
 * The VtepMAC of backend-data / backend-v6-data, as text (the backend parses and judges it). flannel
 * cuts it out of the text with string splits that work only for `{"VNI":1,"VtepMAC":"..."}` and builds
 * the key from the raw -kube-annotation-prefix; we decode the JSON (Go key rules) under the real
 * annotation names, so a prefix with a "/" or another field order still finds it.
 */
export function storedVtepMacs(annotations: Readonly<Record<string, string>>, names: AnnotationNames): StoredMacs {
  const mac = (text: string | undefined): string | undefined => {
    if (text === undefined || text === '') return undefined;
    try {
      const data = parseGoJSON(text);
      const v = isRecord(data) ? goField(data, 'VtepMAC') : undefined;
      return typeof v === 'string' && v !== '' ? v : undefined;
    } catch {
      return undefined;
    }
  };
  const out: StoredMacs = {};
  const v4 = mac(annotations[names.backendData]);
  const v6 = mac(annotations[names.backendV6Data]);
  if (v4 !== undefined) out.v4 = v4;
  if (v6 !== undefined) out.v6 = v6;
  return out;
}
