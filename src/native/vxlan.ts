// The userspace VTEP's pure VXLAN/ARP codec (native/encap/vxlan_codec.*), for unit tests and fuzzing without root.
import { addonFunctions } from './addon.js';

export type VxlanStatus = 'ip' | 'arp' | 'truncated' | 'bad_flags' | 'wrong_vni' | 'not_for_us' | 'bad_ethertype';

export interface VxlanFrame {
  status: VxlanStatus;
  /** Absent when truncated. */
  vni?: number;
  src?: string;
  dst?: string;
  etherType?: number;
  /** Offset of the inner packet (or ARP payload) in the datagram. */
  payloadOffset?: number;
}

interface VxlanExports {
  vxlanEncap(vni: number, dstMac: string, srcMac: string, inner: Buffer): Buffer;
  vxlanParse(datagram: Buffer, vni: number, ourMac: string): VxlanFrame;
  arpReply(arp: Buffer, ourMac: string, ourIPv4: string): Buffer | null;
  flowHash(packet: Buffer): number;
}

function exportsOf(): VxlanExports {
  return addonFunctions<VxlanExports>(['vxlanEncap', 'vxlanParse', 'arpReply', 'flowHash']);
}

/** The UDP payload the engine sends for one inner IP packet (VXLAN header + Ethernet + packet). */
export const vxlanEncap = (vni: number, dstMac: string, srcMac: string, inner: Buffer): Buffer => exportsOf().vxlanEncap(vni, dstMac, srcMac, inner);
/** How the engine classifies a received VXLAN datagram for the VTEP (vni, ourMac). Never throws on bad bytes. */
export const vxlanParse = (datagram: Buffer, vni: number, ourMac: string): VxlanFrame => exportsOf().vxlanParse(datagram, vni, ourMac);
/** The engine's answer to an ARP payload, or null when it is not a request for ourIPv4. */
export const arpReply = (arp: Buffer, ourMac: string, ourIPv4: string): Buffer | null => exportsOf().arpReply(arp, ourMac, ourIPv4);
/** The inner-flow hash that picks the outer source port. */
export const flowHash = (packet: Buffer): number => exportsOf().flowHash(packet);
