// The wireguard backend's entry (flannel's RegisterNetwork): options, the node key, the device(s)
// per Mode — kernel WireGuard when the kernel has it, else (or with -wireguard-userspace) ours — and
// the lease data other nodes configure us from.
import type { Backend, BackendContext, RunningNetwork } from '../types.js';
import { log } from '../../log.js';
import type { Lease } from '../../subnet/types.js';
import { createWgDevice, type WgDevicePlatform } from './device.js';
import { loadOrCreateWgKey, wgKeyFilePath } from './key-file.js';
import { wgBackendData } from './lease-data.js';
import { WireguardNetwork, type WgDevices, type WgLinkOps } from './network.js';
import { parseWireguardOptions, WG_DEVICE_V4, WG_DEVICE_V6, WG_OVERHEAD } from './options.js';

export interface WireguardPlatform extends WgDevicePlatform {
  links(): WgLinkOps;
  /** The key file (tests); default WIREGUARD_KEY_FILE or /run/flannel/wgkey. */
  keyFile?: string;
}

export function wireguardBackendFactory(platform: WireguardPlatform) {
  return async (ctx: BackendContext): Promise<Backend> => {
    const { config, extIface: ext } = ctx;
    const opts = parseWireguardOptions(config.backend.raw);
    const keyFile = platform.keyFile ?? wgKeyFilePath();
    const keys = loadOrCreateWgKey(keyFile);
    const publicKey = keys.publicKey.toString('base64');
    const underlayMtu = opts.mtu ?? ext.mtu;
    const mtu = underlayMtu - WG_OVERHEAD;
    log.info(
      `wireguard: Mode=${opts.mode} ListenPort=${opts.listenPort} ListenPortV6=${opts.listenPortV6} MTU=${underlayMtu} (devices ${mtu}) ` +
        `PSK=${opts.psk ? 'set' : 'none'} PersistentKeepaliveInterval=${opts.persistentKeepalive}s; key ${keys.created ? 'created in' : 'read from'} ${keyFile}, public key ${publicKey}`,
    );
    const devs: WgDevices = {};
    const make = async (name: string, listenPort: number, ipv6: boolean, alsoListenPort?: number) =>
      createWgDevice({ name, mtu, privateKey: keys.privateKey, listenPort, ipv6, ...(alsoListenPort !== undefined ? { alsoListenPort } : {}) }, platform);
    try {
      if (opts.mode === 'separate') {
        if (config.enableIPv4) devs.v4 = await make(WG_DEVICE_V4, opts.listenPort, false);
        if (config.enableIPv6) devs.v6 = await make(WG_DEVICE_V6, opts.listenPortV6, true);
      } else {
        // Our lease says BackendV6Data.Port = ListenPortV6 (flannel's quirk, kept byte for byte), so the
        // one device answers there too: peers that dial the advertised port reach us.
        const extra = config.enableIPv6 && opts.listenPortV6 !== opts.listenPort ? opts.listenPortV6 : undefined;
        devs.single = await make(WG_DEVICE_V4, opts.listenPort, config.enableIPv6, extra);
      }
    } catch (e) {
      for (const d of Object.values(devs)) await d?.close().catch(() => undefined);
      throw e;
    }
    const links = platform.links();
    return {
      type: 'wireguard',
      backendData: () => (config.enableIPv4 ? wgBackendData(publicKey, opts.listenPort) : undefined),
      backendV6Data: () => (config.enableIPv6 ? wgBackendData(publicKey, opts.listenPortV6) : undefined),
      start: async (lease: Lease): Promise<RunningNetwork> => {
        const net = new WireguardNetwork(
          config,
          opts,
          {
            mode: opts.mode,
            enableIPv4: config.enableIPv4,
            enableIPv6: config.enableIPv6,
            listenPort: opts.listenPort,
            listenPortV6: opts.listenPortV6,
            ourV4: ext.publicIP ?? ext.ifaceAddr,
            ourV6: ext.publicIPv6 ?? ext.ifaceAddrV6,
          },
          devs,
          links,
          underlayMtu,
        );
        try {
          net.configure(lease);
        } catch (e) {
          await net.close();
          throw e;
        }
        const names = Object.values(devs).map((d) => `${d!.name} (${d!.kind})`);
        log.info(`wireguard: ${names.join(', ')} up, MTU ${net.mtu}`);
        return net;
      },
    };
  };
}
