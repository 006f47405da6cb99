// Generic netlink framing, pure: nlmsghdr, rtattr TLVs (4-byte aligned, nested), NLMSG_ERROR/DONE.
// Netlink integers are in host byte order; every platform we build for is little-endian, and the
// helpers below check that once instead of silently producing wrong bytes elsewhere.
//
// Decoders are total: malformed input yields { ok: false, error } and never throws to the caller,
// and every loop advances by at least one aligned header, so no input can make them spin.
import { constants as osConstants, endianness } from 'node:os';
import {
  NLA_F_NESTED,
  NLA_HDRLEN,
  NLA_TYPE_MASK,
  NLM_F_ACK_TLVS,
  NLM_F_CAPPED,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLMSG_HDRLEN,
  NLMSGERR_ATTR_MSG,
} from './constants.js';

if (endianness() !== 'LE') throw new Error('flannelts netlink codec: only little-endian hosts are supported');

export type Decoded<T> = { ok: true; value: T } | { ok: false; error: string };

export const ok = <T>(value: T): Decoded<T> => ({ ok: true, value });
export const fail = <T>(error: string): Decoded<T> => ({ ok: false, error });

/** Thrown inside decoders only; converted to a Decoded error at their boundary by `guard`. */
export class DecodeError extends Error {}

/** Runs a decoder body, turning DecodeError (and RangeError from Buffer reads) into an error value. */
export function guard<T>(what: string, body: () => T): Decoded<T> {
  try {
    return ok(body());
  } catch (e) {
    if (e instanceof DecodeError || e instanceof RangeError) return fail(`${what}: ${e.message}`);
    throw e;
  }
}

export const align4 = (n: number): number => (n + 3) & ~3;

// ---------------------------------------------------------------------------------------------
// nlmsghdr

export interface NlHeader {
  type: number;
  flags: number;
  seq: number;
  pid: number;
}

export interface NlMessage extends NlHeader {
  /** Bytes after the 16-byte header, up to nlmsg_len (the family header and attributes). */
  payload: Buffer;
}

/** One netlink message: header + payload, nlmsg_len set, padded to 4 bytes. */
export function encodeMessage(h: NlHeader, payload: Buffer): Buffer {
  const len = NLMSG_HDRLEN + payload.length;
  const out = Buffer.alloc(align4(len));
  out.writeUInt32LE(len, 0);
  out.writeUInt16LE(h.type, 4);
  out.writeUInt16LE(h.flags, 6);
  out.writeUInt32LE(h.seq >>> 0, 8);
  out.writeUInt32LE(h.pid >>> 0, 12);
  payload.copy(out, NLMSG_HDRLEN);
  return out;
}

/** Splits a datagram into messages. */
export function decodeMessages(buf: Buffer): Decoded<NlMessage[]> {
  const out: NlMessage[] = [];
  let off = 0;
  while (off < buf.length) {
    const left = buf.length - off;
    if (left < NLMSG_HDRLEN) return fail(`truncated nlmsghdr at offset ${off}: ${left} bytes left`);
    const len = buf.readUInt32LE(off);
    if (len < NLMSG_HDRLEN) return fail(`nlmsg_len ${len} at offset ${off} is shorter than the header`);
    if (len > left) return fail(`nlmsg_len ${len} at offset ${off} runs past the end (${left} bytes left)`);
    out.push({
      type: buf.readUInt16LE(off + 4),
      flags: buf.readUInt16LE(off + 6),
      seq: buf.readUInt32LE(off + 8),
      pid: buf.readUInt32LE(off + 12),
      payload: buf.subarray(off + NLMSG_HDRLEN, off + len),
    });
    off += align4(len);
  }
  return ok(out);
}

// ---------------------------------------------------------------------------------------------
// rtattr / nlattr TLVs

export interface RawAttr {
  /** Type with the NESTED and NET_BYTEORDER bits removed. */
  type: number;
  nested: boolean;
  data: Buffer;
}

/** One attribute, padded to 4 bytes. */
export function attr(type: number, data: Buffer = Buffer.alloc(0)): Buffer {
  const len = NLA_HDRLEN + data.length;
  const out = Buffer.alloc(align4(len));
  out.writeUInt16LE(len, 0);
  out.writeUInt16LE(type, 2);
  data.copy(out, NLA_HDRLEN);
  return out;
}

export const attrU8 = (type: number, v: number): Buffer => attr(type, Buffer.from([v & 0xff]));
export function attrU16(type: number, v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(v);
  return attr(type, b);
}
/** A 16-bit value in network byte order (e.g. IFLA_VXLAN_PORT). */
export function attrU16BE(type: number, v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v);
  return attr(type, b);
}
export function attrU32(type: number, v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0);
  return attr(type, b);
}
/** NUL-terminated string, as the kernel expects for names and kinds. */
export const attrString = (type: number, s: string): Buffer => attr(type, Buffer.from(s + '\0', 'utf8'));
/** Flag attribute: presence is the value. */
export const attrFlag = (type: number): Buffer => attr(type);
/** Nested attribute; NLA_F_NESTED is set as modern kernels and iproute2 do. */
export const attrNested = (type: number, children: Buffer[]): Buffer => attr(type | NLA_F_NESTED, Buffer.concat(children));

export function decodeAttrs(buf: Buffer): Decoded<RawAttr[]> {
  const out: RawAttr[] = [];
  let off = 0;
  // Fewer than 4 trailing bytes can only be padding; iproute2 tolerates them the same way.
  while (buf.length - off >= NLA_HDRLEN) {
    const len = buf.readUInt16LE(off);
    const rawType = buf.readUInt16LE(off + 2);
    if (len < NLA_HDRLEN) return fail(`attribute length ${len} at offset ${off} is shorter than its header`);
    if (len > buf.length - off) return fail(`attribute type ${rawType & NLA_TYPE_MASK} length ${len} at offset ${off} runs past the end`);
    out.push({
      type: rawType & NLA_TYPE_MASK,
      nested: (rawType & NLA_F_NESTED) !== 0,
      data: buf.subarray(off + NLA_HDRLEN, off + len),
    });
    off += align4(len);
  }
  return ok(out);
}

/**
 * Attributes by type (last one wins, as in the kernel's nla_parse) with typed readers that check
 * lengths. Readers throw DecodeError; use them inside `guard`.
 */
export class Attrs {
  private readonly map = new Map<number, Buffer>();

  constructor(list: RawAttr[]) {
    for (const a of list) this.map.set(a.type, a.data);
  }

  static parse(buf: Buffer, where: string): Attrs {
    const r = decodeAttrs(buf);
    if (!r.ok) throw new DecodeError(`${where}: ${r.error}`);
    return new Attrs(r.value);
  }

  has(type: number): boolean {
    return this.map.has(type);
  }
  raw(type: number): Buffer | undefined {
    return this.map.get(type);
  }
  private sized(type: number, n: number, what: string): Buffer | undefined {
    const b = this.map.get(type);
    if (b === undefined) return undefined;
    if (b.length < n) throw new DecodeError(`attribute ${type} (${what}) has ${b.length} bytes, need ${n}`);
    return b;
  }
  u8(type: number): number | undefined {
    return this.sized(type, 1, 'u8')?.readUInt8(0);
  }
  u16be(type: number): number | undefined {
    return this.sized(type, 2, 'u16')?.readUInt16BE(0);
  }
  u32(type: number): number | undefined {
    return this.sized(type, 4, 'u32')?.readUInt32LE(0);
  }
  /** String up to the first NUL (the kernel always terminates; tolerate a missing terminator). */
  str(type: number): string | undefined {
    const b = this.map.get(type);
    if (b === undefined) return undefined;
    const nul = b.indexOf(0);
    return b.subarray(0, nul < 0 ? b.length : nul).toString('utf8');
  }
  nested(type: number, where: string): Attrs | undefined {
    const b = this.map.get(type);
    return b === undefined ? undefined : Attrs.parse(b, where);
  }
}

// ---------------------------------------------------------------------------------------------
// NLMSG_ERROR (error or ACK) and NLMSG_DONE

const errnoNames: Map<number, string> = (() => {
  const m = new Map<number, string>();
  for (const [name, num] of Object.entries(osConstants.errno)) {
    // Aliases (EWOULDBLOCK = EAGAIN, EDEADLOCK = EDEADLK) share a number; keep the first, canonical one.
    if (!m.has(num)) m.set(num, name);
  }
  return m;
})();

/** errno number -> symbolic name ("EEXIST"); unknown numbers become "E<n>". */
export function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `E${errno}`;
}

export interface NlAck {
  /** Positive errno, 0 for a plain ACK. */
  errno: number;
  /** Symbolic errno name, '' for an ACK. */
  code: string;
  /** The kernel's extended-ack reason, when it gave one. */
  extMessage?: string;
  /** Header of the request this answers (echoed by the kernel). */
  request: NlHeader;
}

export function decodeError(msg: NlMessage): Decoded<NlAck> {
  return guard('NLMSG_ERROR', () => {
    if (msg.type !== NLMSG_ERROR) throw new DecodeError(`message type ${msg.type} is not NLMSG_ERROR`);
    const p = msg.payload;
    if (p.length < 4 + NLMSG_HDRLEN) throw new DecodeError(`payload ${p.length} bytes, need ${4 + NLMSG_HDRLEN}`);
    const err = p.readInt32LE(0);
    const errno = err === 0 ? 0 : -err; // avoid -0 for plain ACKs
    const reqLen = p.readUInt32LE(4);
    const request: NlHeader = { type: p.readUInt16LE(8), flags: p.readUInt16LE(10), seq: p.readUInt32LE(12), pid: p.readUInt32LE(16) };
    const ack: NlAck = { errno, code: errno === 0 ? '' : errnoName(errno), request };
    if (msg.flags & NLM_F_ACK_TLVS) {
      // The echoed request is only its header when capped, else the whole request.
      const echoed = msg.flags & NLM_F_CAPPED ? NLMSG_HDRLEN : align4(reqLen);
      const tlvStart = 4 + echoed;
      if (tlvStart <= p.length) {
        const tlvs = Attrs.parse(p.subarray(tlvStart), 'extended ack');
        const text = tlvs.str(NLMSGERR_ATTR_MSG);
        if (text) ack.extMessage = text;
      }
    }
    return ack;
  });
}

export const isDone = (m: NlMessage): boolean => m.type === NLMSG_DONE;
