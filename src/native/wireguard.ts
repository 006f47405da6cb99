// Typed view of the WireGuard protocol core's bindings (native/js/wireguard_*_js.cc): the primitives
// and handshake functions for known-answer tests, and the Device class that tests drive on a fake
// clock. Part of the cookie path too: the device's XChaCha20-Poly1305 jobs come out here and their
// answers go back (src/backend/wireguard/cookie-crypto.ts does the sealing).
import { loadAddon } from './addon.js';

export interface WgEndpoint {
  address: string;
  port: number;
}

/** Monotonic and wall-clock time in milliseconds; every device call takes it explicitly. */
export interface WgNow {
  mono: number;
  wall: number;
}

export interface CookieSealJob {
  to: WgEndpoint;
  receiver: number;
  key: Buffer;
  nonce: Buffer;
  cookie: Buffer;
  aad: Buffer;
}

export interface CookieOpenJob {
  peer: Buffer;
  key: Buffer;
  nonce: Buffer;
  sealed: Buffer;
  aad: Buffer;
}

export interface WgOutput {
  sends: { to: WgEndpoint; data: Buffer }[];
  cookieSeals: CookieSealJob[];
  cookieOpens: CookieOpenJob[];
}

export type WgVerdict = 'inner' | 'handled' | 'drop' | 'send' | 'queued';

export interface WgReceiveResult extends WgOutput {
  verdict: WgVerdict;
  reason: string;
  peer?: Buffer;
  inner?: Buffer;
}

export interface WgSealResult extends WgOutput {
  verdict: WgVerdict;
  reason: string;
  datagram?: Buffer;
  to?: WgEndpoint;
}

export interface WgPeerConfig {
  publicKey: Buffer;
  psk?: Buffer;
  endpoint?: WgEndpoint;
  persistentKeepalive?: number;
}

export interface WgPeerStats {
  txBytes: number;
  rxBytes: number;
  lastHandshakeMs: number;
  endpoint?: WgEndpoint;
  persistentKeepalive: number;
  handshakeAttempts: number;
  staged: number;
  current: boolean;
  next: boolean;
  previous: boolean;
}

export interface WgTimingOptions {
  /** Test hook: every protocol duration divided by this (native/wireguard/README.md). */
  scale?: number;
  rekeyAfterMessages?: number;
  rejectAfterMessages?: number;
}

export interface WgDevice {
  publicKey(): Buffer;
  injectRandom(bytes: Buffer): number;
  setPeer(cfg: WgPeerConfig, now: WgNow): WgOutput;
  removePeer(publicKey: Buffer): boolean;
  receive(datagram: Buffer, from: WgEndpoint, now: WgNow, underLoad?: boolean): WgReceiveResult;
  seal(peer: Buffer, packet: Buffer, now: WgNow): WgSealResult;
  tick(now: WgNow): WgOutput;
  nextDeadline(): number | null;
  completeCookieSeal(job: CookieSealJob, sealed: Buffer): WgOutput;
  consumeCookie(peer: Buffer, cookie: Buffer, aad: Buffer, now: WgNow): boolean;
  peerStats(peer: Buffer): WgPeerStats | null;
  counters(): Record<string, number>;
}

/** The protocol's reasons in the native order (native/wireguard/device.h wg::Reason). */
export const WG_REASONS = [
  'data', 'keepalive', 'initiation', 'response', 'cookie_reply', 'cookie_sent', 'initiation_crossed', 'too_short', 'unknown_type', 'bad_length', 'bad_mac1',
  'unknown_receiver', 'expired_keypair', 'decrypt_failed', 'replay', 'static_decrypt', 'unknown_peer', 'timestamp_decrypt',
  'handshake_replay', 'handshake_flood', 'handshake_state', 'response_decrypt', 'dh_failed', 'cookie_unexpected', 'sent', 'queued',
  'queue_full', 'gave_up', 'no_endpoint', 'too_big', 'keepalive_sent',
] as const;
/** What the encapsulation counts itself (native/encap/wireguard_interface.h WgEncapCounters). */
export const WG_ENCAP_COUNTERS = [
  'rx_datagrams', 'handshake_queued', 'handshake_queue_full', 'handshake_abandoned', 'initiations_deferred', 'cookie_jobs_dropped', 'control_unsent',
] as const;
export type WgCounters = Record<(typeof WG_REASONS)[number] | (typeof WG_ENCAP_COUNTERS)[number], number>;

/** A peer of a WireGuardInterface as its stats report it. */
export interface WgInterfacePeer extends WgPeerStats {
  publicKey: Buffer;
}

/**
 * A userspace WireGuard interface (native/encap/wireguard_interface.h): keys, peers and sessions of
 * one device, run by the engine it is handed to (EngineOptions.encap 'wireguard'). Real clocks; data
 * packets never come here, only the control calls and the cookie jobs.
 */
export interface WgInterface {
  publicKey(): Buffer;
  setPrivateKey(key: Buffer): boolean;
  setMtu(mtu: number): void;
  /** Adds or updates a peer; an endpoint replaces its current one, none keeps it. False for our own key. */
  setPeer(cfg: WgPeerConfig): boolean;
  removePeer(publicKey: Buffer): boolean;
  peers(): WgInterfacePeer[];
  /** Every protocol reason (data, keepalive, bad_mac1, replay, ...) and the encapsulation's own counters. */
  counters(): WgCounters;
  /** Called on the JavaScript thread when cookie jobs wait; null stops it. Does not keep the process alive. */
  onCookieJobs(cb: (() => void) | null): void;
  takeCookieJobs(): { cookieSeals: CookieSealJob[]; cookieOpens: CookieOpenJob[] };
  /** The reply goes out through the running engine; `sends` is always empty. */
  completeCookieSeal(job: CookieSealJob, sealed: Buffer): WgOutput;
  consumeCookie(peer: Buffer, cookie: Buffer, aad: Buffer, now?: WgNow): boolean;
  close(): void;
}

export interface WgInterfaceOptions {
  privateKey: Buffer;
  /** The device MTU: transport messages are never padded past it. */
  mtu?: number;
  /** Test hook (native/wireguard/README.md): every protocol duration divided by this, 1..1000. */
  timingScale?: number;
}

export interface NoiseInitiatorOptions {
  staticPrivate: Buffer;
  peerPublic: Buffer;
  psk?: Buffer;
  ephemeralPrivate: Buffer;
  timestamp: Buffer;
  senderIndex: number;
  response?: Buffer;
}

export interface NoiseResult {
  error: string;
  initiation?: Buffer;
  response?: Buffer;
  peerStatic?: Buffer;
  timestamp?: Buffer;
  remoteIndex?: number;
  sendKey?: Buffer;
  recvKey?: Buffer;
}

export interface NoiseResponderOptions {
  staticPrivate: Buffer;
  psk?: Buffer;
  initiation: Buffer;
  ephemeralPrivate: Buffer;
  senderIndex: number;
}

export interface WireGuardExports {
  x25519Public(priv: Buffer): Buffer | null;
  x25519(priv: Buffer, pub: Buffer): Buffer | null;
  blake2s(data: Buffer): Buffer;
  blake2sMac(key: Buffer, data: Buffer, outLen?: number): Buffer | null;
  hmacBlake2s(key: Buffer, data: Buffer): Buffer;
  hkdf(chainKey: Buffer, input: Buffer): [Buffer, Buffer, Buffer];
  aead(seal: boolean, key: Buffer, nonce: Buffer, data: Buffer, aad: Buffer): Buffer | null;
  noiseInitiator(o: NoiseInitiatorOptions): NoiseResult;
  noiseResponder(o: NoiseResponderOptions): NoiseResult;
  mac1Valid(message: Buffer, receiverPublic: Buffer): boolean;
  Device: new (o: { privateKey: Buffer; mtu?: number; timing?: WgTimingOptions }) => WgDevice;
  Interface: new (o: WgInterfaceOptions) => WgInterface;
}

/** The WireGuard bindings, checked for presence (a stale build fails with a clear message). */
export function wireguardNative(): WireGuardExports {
  const wg = loadAddon().wireguard as Partial<WireGuardExports> | undefined;
  if (!wg || typeof wg.noiseInitiator !== 'function' || typeof wg.Device !== 'function' || typeof wg.Interface !== 'function') {
    throw new Error('flannelts: native addon has no wireguard exports; rebuild it (npm run build)');
  }
  return wg as WireGuardExports;
}
