// Core IP types shared by every module. Addresses are bigints so IPv4 and IPv6 share one code path.
export type Family = 4 | 6;

export interface IPAddr {
  readonly family: Family;
  /** The address as an unsigned integer (32 or 128 bits). */
  readonly value: bigint;
}

export interface IPNet {
  readonly family: Family;
  /** The network address (host bits are zero). */
  readonly value: bigint;
  readonly prefixLen: number;
}
