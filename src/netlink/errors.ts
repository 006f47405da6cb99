// NetlinkError: a kernel refusal of one request, named after the object so logs read like
// `add route 198.19.5.0/24 via 198.18.0.12 dev eth0: EEXIST`.
export class NetlinkError extends Error {
  constructor(
    /** What we asked for, e.g. "add route 198.19.5.0/24 via 198.18.0.12 dev eth0". */
    readonly op: string,
    /** errno name ("EEXIST"), or "ETIMEDOUT"/"EBADMSG" for transport and decoding failures. */
    readonly code: string,
    /** Positive errno number; 0 when the failure did not come from the kernel. */
    readonly errno: number,
    /** The kernel's extended-ack text, if any. */
    readonly extMessage?: string,
  ) {
    super(`${op}: ${code}${extMessage ? ` (${extMessage})` : ''}`);
    this.name = 'NetlinkError';
  }
}

/** True for "already exists", which reconcile loops treat as success. */
export const isExists = (e: unknown): boolean => e instanceof NetlinkError && e.code === 'EEXIST';
/** True for "no such object", which deletes of already-gone state treat as success. */
export const isNotFound = (e: unknown): boolean =>
  e instanceof NetlinkError && (e.code === 'ENOENT' || e.code === 'ESRCH' || e.code === 'ENODEV' || e.code === 'EADDRNOTAVAIL');
