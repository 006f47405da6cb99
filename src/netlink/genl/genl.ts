// Generic netlink framing: nlmsghdr + genlmsghdr {cmd, version, reserved} + attributes, and the
// controller's CTRL_CMD_GETFAMILY, which turns a family name ("wireguard") into the message type the
// kernel assigned it at boot.
import { Attrs, attrString, DecodeError, decodeMessages, encodeMessage, fail, guard, ok, type Decoded, type NlMessage } from '../codec.js';
import { NLM_F_ACK, NLM_F_REQUEST } from '../constants.js';
import { CTRL_ATTR_FAMILY_ID, CTRL_ATTR_FAMILY_NAME, CTRL_ATTR_HDRSIZE, CTRL_ATTR_MAXATTR, CTRL_ATTR_VERSION, CTRL_CMD_GETFAMILY, GENL_HDRLEN, GENL_ID_CTRL } from './constants.js';

export interface GenlHeader {
  cmd: number;
  version: number;
}

/** One generic netlink message: family id as nlmsg_type, the genl header, then attributes. */
export function encodeGenl(family: number, flags: number, seq: number, pid: number, h: GenlHeader, attrs: Buffer[]): Buffer {
  const g = Buffer.alloc(GENL_HDRLEN);
  g.writeUInt8(h.cmd, 0);
  g.writeUInt8(h.version, 1);
  return encodeMessage({ type: family, flags, seq, pid }, Buffer.concat([g, ...attrs]));
}

export interface GenlMessage extends GenlHeader {
  family: number;
  flags: number;
  seq: number;
  /** The bytes after the genl header. */
  attrs: Buffer;
}

export function decodeGenl(m: NlMessage): Decoded<GenlMessage> {
  if (m.payload.length < GENL_HDRLEN) return fail(`genl message of ${m.payload.length} bytes has no genlmsghdr`);
  return ok({ family: m.type, flags: m.flags, seq: m.seq, cmd: m.payload.readUInt8(0), version: m.payload.readUInt8(1), attrs: m.payload.subarray(GENL_HDRLEN) });
}

/** CTRL_CMD_GETFAMILY for one family by name (version 1, as libmnl and wgctrl send it). */
export function encodeGetFamily(name: string, seq: number, pid: number): Buffer {
  return encodeGenl(GENL_ID_CTRL, NLM_F_REQUEST | NLM_F_ACK, seq, pid, { cmd: CTRL_CMD_GETFAMILY, version: 1 }, [attrString(CTRL_ATTR_FAMILY_NAME, name)]);
}

export interface GenlFamily {
  id: number;
  name: string;
  version: number;
  hdrSize: number;
  maxAttr: number;
}

/** The controller's reply (CTRL_CMD_NEWFAMILY) in one datagram. */
export function decodeFamily(datagram: Buffer): Decoded<GenlFamily> {
  const msgs = decodeMessages(datagram);
  if (!msgs.ok) return msgs;
  const m = msgs.value.find((x) => x.type === GENL_ID_CTRL);
  if (!m) return fail('no controller message in the reply');
  return decodeFamilyMessage(m);
}

/** One CTRL_CMD_NEWFAMILY message. */
export function decodeFamilyMessage(m: NlMessage): Decoded<GenlFamily> {
  const g = decodeGenl(m);
  if (!g.ok) return g;
  return guard('CTRL_CMD_NEWFAMILY', () => {
    const a = Attrs.parse(g.value.attrs, 'family attributes');
    const id = a.raw(CTRL_ATTR_FAMILY_ID)?.readUInt16LE(0);
    if (id === undefined) throw new DecodeError('no CTRL_ATTR_FAMILY_ID');
    return { id, name: a.str(CTRL_ATTR_FAMILY_NAME) ?? '', version: a.u32(CTRL_ATTR_VERSION) ?? 0, hdrSize: a.u32(CTRL_ATTR_HDRSIZE) ?? 0, maxAttr: a.u32(CTRL_ATTR_MAXATTR) ?? 0 };
  });
}
