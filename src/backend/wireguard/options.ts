// The wireguard backend's net-conf options, read like flannel's RegisterNetwork config struct
// (pkg/backend/wireguard/wireguard.go): Go JSON rules (case-insensitive keys, wrong types are errors),
// flannel's defaults, and Mode compared case-sensitively.
import { optionField, optionInt, optionString } from '../backend-options.js';
import { parseWgKey } from './key-file.js';

/** IPv4/IPv6 header (worst case 40) + UDP 8 + WireGuard 16 + tag 16, as flannel subtracts for both families. */
export const WG_OVERHEAD = 80;
export const WG_DEFAULT_PORT = 51820;
export const WG_DEFAULT_PORT_V6 = 51821;

export const WG_MODES = ['separate', 'auto', 'ipv4', 'ipv6'] as const;
export type WgMode = (typeof WG_MODES)[number];

export interface WireguardOptions {
  listenPort: number;
  listenPortV6: number;
  /** The underlay MTU; absent: the external interface's. Devices and FLANNEL_MTU get MTU - 80. */
  mtu?: number;
  /** Base64 preshared key for every peer, already checked to be 32 bytes. */
  psk?: string;
  /** PersistentKeepaliveInterval in seconds; 0 = off. */
  persistentKeepalive: number;
  mode: WgMode;
}

export function parseWireguardOptions(raw: Readonly<Record<string, unknown>>): WireguardOptions {
  const listenPort = optionInt(raw, 'ListenPort', WG_DEFAULT_PORT, 0, 65535);
  const listenPortV6 = optionInt(raw, 'ListenPortV6', WG_DEFAULT_PORT_V6, 0, 65535);
  const mtu = optionInt(raw, 'MTU', 0, 0, 65535);
  if (mtu !== 0 && mtu < 68 + WG_OVERHEAD) {
    throw new Error(`net-conf: Backend.MTU ${mtu} is invalid: must leave at least 68 bytes after the ${WG_OVERHEAD}-byte WireGuard overhead`);
  }
  // flannel's field is a time.Duration multiplied by time.Second: a JSON integer of seconds. The
  // kernel takes a 16-bit number of seconds.
  const persistentKeepalive = optionInt(raw, 'PersistentKeepaliveInterval', 0, 0, 65535, ' (seconds; 0 turns it off)');
  const psk = optionString(raw, 'PSK');
  if (psk !== undefined && psk !== '') {
    try {
      parseWgKey(psk);
    } catch (e) {
      throw new Error(`net-conf: Backend.PSK is invalid: could not parse psk: ${(e as Error).message} (make one with "wg genpsk")`);
    }
  }
  const modeRaw = optionField(raw, 'Mode');
  const mode = modeRaw === undefined || modeRaw === null ? 'separate' : modeRaw;
  if (typeof mode !== 'string' || !(WG_MODES as readonly string[]).includes(mode)) {
    // flannel's error, word for word; the hint is ours.
    throw new Error(`no valid Mode configured (Backend.Mode ${JSON.stringify(mode)}; one of ${WG_MODES.join(', ')}, lower case)`);
  }
  return {
    listenPort,
    listenPortV6,
    mtu: mtu === 0 ? undefined : mtu,
    psk: psk === '' ? undefined : psk,
    persistentKeepalive,
    mode: mode as WgMode,
  };
}

/** Device names as flannel makes them: one per family in separate mode, else one for both. */
export const WG_DEVICE_V4 = 'flannel-wg';
export const WG_DEVICE_V6 = 'flannel-wg-v6';
