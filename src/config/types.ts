import type { IPNet } from '../ip/types.js';

/** Backend section of net-conf.json: `Type` plus the per-type options, kept as given. */
export interface BackendConfig {
  readonly type: string;
  /** The whole Backend object as parsed (including Type), for per-type option parsing by the backend. */
  readonly raw: Readonly<Record<string, unknown>>;
}

/** net-conf.json after validation, with flannel's derived defaults filled in. */
export interface NetworkConfig {
  readonly enableIPv4: boolean;
  readonly enableIPv6: boolean;
  /** flannel's nftables traffic manager (tables flannel-ipv4 / flannel-ipv6) instead of iptables. */
  readonly enableNFTables: boolean;
  readonly network?: IPNet;
  readonly subnetLen: number;
  readonly subnetMin?: IPNet;
  readonly subnetMax?: IPNet;
  readonly ipv6Network?: IPNet;
  readonly ipv6SubnetLen: number;
  readonly ipv6SubnetMin?: IPNet;
  readonly ipv6SubnetMax?: IPNet;
  readonly backend: BackendConfig;
  /** The JSON text it was parsed from, for logs and `flannelctl status`. */
  readonly source: string;
}
