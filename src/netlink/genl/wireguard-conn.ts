// The kernel WireGuard's configuration channel: a NETLINK_GENERIC socket, the "wireguard" family's id
// looked up once (CTRL_CMD_GETFAMILY), WG_CMD_SET_DEVICE as an acknowledged request and
// WG_CMD_GET_DEVICE as a dump, over the same request/ACK/dump machinery as rtnetlink (conn.ts).
// Only reachable where the kernel has WireGuard; this repository verifies the messages against byte
// fixtures (wireguard.ts) and the wiring with a scripted transport.
import { decodeMessages, type NlMessage } from '../codec.js';
import { NetlinkConn } from '../conn.js';
import { NetlinkError } from '../errors.js';
import { openNetlinkSocket, type NetlinkTransport } from '../socket.js';
import { GENL_ID_CTRL, NETLINK_GENERIC, WG_GENL_NAME } from './constants.js';
import { decodeFamilyMessage, encodeGetFamily } from './genl.js';
import { decodeDeviceMessages, encodeGetDevice, encodeSetDevice, type WgDeviceInfo, type WgSetDevice } from './wireguard.js';

/** The payload (after nlmsghdr) of one encoded message: the conn writes its own header and sequence. */
function payloadOf(msg: Buffer): Buffer {
  const m = decodeMessages(msg);
  if (!m.ok || m.value.length !== 1) throw new Error(`internal: not one netlink message: ${m.ok ? m.value.length : m.error}`);
  return m.value[0]!.payload;
}

export class WireguardGenl {
  private constructor(
    private readonly conn: NetlinkConn,
    readonly family: number,
  ) {}

  /** Resolves the family; ENOENT (NetlinkError) when the kernel has no WireGuard. */
  static open(transport: NetlinkTransport = openNetlinkSocket(NETLINK_GENERIC)): WireguardGenl {
    const conn = new NetlinkConn(transport);
    try {
      const msgs = conn.request(GENL_ID_CTRL, 0, payloadOf(encodeGetFamily(WG_GENL_NAME, 0, 0)), `resolve generic netlink family ${WG_GENL_NAME}`);
      const m = msgs.find((x) => x.type === GENL_ID_CTRL);
      const f = m ? decodeFamilyMessage(m) : undefined;
      if (!f?.ok) throw new NetlinkError(`resolve generic netlink family ${WG_GENL_NAME}`, 'EBADMSG', 0, f ? f.error : 'no CTRL_CMD_NEWFAMILY in the reply');
      return new WireguardGenl(conn, f.value.id);
    } catch (e) {
      conn.close();
      throw e;
    }
  }

  setDevice(d: WgSetDevice): void {
    const what = d.ifname ?? `#${d.ifindex}`;
    this.conn.request(this.family, 0, payloadOf(encodeSetDevice(this.family, d, 0, 0)), `configure wireguard device ${what}`);
  }

  getDevice(dev: { ifindex?: number; ifname?: string }): WgDeviceInfo {
    const op = `read wireguard device ${dev.ifname ?? `#${dev.ifindex}`}`;
    const msgs: NlMessage[] = this.conn.dump(this.family, payloadOf(encodeGetDevice(this.family, dev, 0, 0)), op);
    const d = decodeDeviceMessages(this.family, msgs);
    if (!d.ok) throw new NetlinkError(op, 'EBADMSG', 0, d.error);
    return d.value;
  }

  close(): void {
    this.conn.close();
  }
}
