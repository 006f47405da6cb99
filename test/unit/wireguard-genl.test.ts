// The kernel WireGuard path at codec level (this kernel has no WireGuard): generic-netlink messages
// against bytes written out by hand from the uapi layouts (linux/genetlink.h, linux/wireguard.h,
// linux/if_link.h), field by field, so the encoder is checked against the layout, not against itself.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatCIDR, formatIP, parseCIDR, mustParseIP } from '../../src/ip/index.js';
import { decodeFamily, encodeGetFamily } from '../../src/netlink/genl/genl.js';
import { decodeGetDevice, encodeGetDevice, encodeNewWireguardLink, encodeSetDevice } from '../../src/netlink/genl/wireguard.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+|\/\/[^\n]*/g, ''), 'hex');
const key = (b: number): Buffer => Buffer.alloc(32, b);

test('CTRL_CMD_GETFAMILY "wireguard": request bytes and the controller reply', () => {
  assert.deepEqual(
    encodeGetFamily('wireguard', 1, 0),
    hex(`24000000 1000 0500 01000000 00000000   // nlmsghdr: len 36, GENL_ID_CTRL, REQUEST|ACK, seq 1, pid 0
         03 01 0000                             // genlmsghdr: CTRL_CMD_GETFAMILY, version 1
         0e00 0200 77697265677561726400 0000    // CTRL_ATTR_FAMILY_NAME "wireguard\\0" + pad`),
  );
  const reply = hex(`44000000 1000 0000 01000000 00000000
                     01 02 0000                               // CTRL_CMD_NEWFAMILY
                     0600 0100 1a00 0000                      // CTRL_ATTR_FAMILY_ID 0x1a
                     0e00 0200 77697265677561726400 0000      // CTRL_ATTR_FAMILY_NAME
                     0800 0300 01000000                       // CTRL_ATTR_VERSION 1
                     0800 0400 00000000                       // CTRL_ATTR_HDRSIZE 0
                     0800 0500 08000000                       // CTRL_ATTR_MAXATTR 8`);
  assert.deepEqual(decodeFamily(reply), { ok: true, value: { id: 0x1a, name: 'wireguard', version: 1, hdrSize: 0, maxAttr: 8 } });
  assert.equal(decodeFamily(reply.subarray(0, 30)).ok, false, 'truncated: an error value');
});

test('WG_CMD_SET_DEVICE as flannel configures a device and adds a peer (ReplacePeers, ReplaceAllowedIPs, PSK, endpoint, keepalive)', () => {
  const msg = encodeSetDevice(
    0x1a,
    {
      ifname: 'flannel-wg',
      privateKey: key(0x11),
      listenPort: 51820,
      replacePeers: true,
      peers: [{ publicKey: key(0x22), replaceAllowedIPs: true, presharedKey: key(0x33), endpoint: { ip: mustParseIP('198.18.0.12'), port: 51820 }, persistentKeepalive: 25, allowedIPs: [parseCIDR('198.19.6.0/24')!] }],
    },
    7,
    0,
  );
  const expected = hex(`
    ec000000 1a00 0500 07000000 00000000        // nlmsghdr: len 236, family 0x1a, REQUEST|ACK, seq 7
    01 01 0000                                  // WG_CMD_SET_DEVICE, WG_GENL_VERSION
    0f00 0200 666c616e6e656c2d776700 00         // WGDEVICE_A_IFNAME "flannel-wg\\0"
    2400 0300 ${'11'.repeat(32)}                // WGDEVICE_A_PRIVATE_KEY
    0600 0600 6cca 0000                         // WGDEVICE_A_LISTEN_PORT 51820 (host order)
    0800 0500 01000000                          // WGDEVICE_A_FLAGS WGDEVICE_F_REPLACE_PEERS
    9400 0880                                   // WGDEVICE_A_PEERS | NLA_F_NESTED, 148 bytes
      9000 0080                                 //   peer 0 | NLA_F_NESTED, 144 bytes
        2400 0100 ${'22'.repeat(32)}            //     WGPEER_A_PUBLIC_KEY
        0800 0300 02000000                      //     WGPEER_A_FLAGS WGPEER_F_REPLACE_ALLOWEDIPS
        2400 0200 ${'33'.repeat(32)}            //     WGPEER_A_PRESHARED_KEY
        1400 0400 0200 ca6c c612000c 0000000000000000   // WGPEER_A_ENDPOINT sockaddr_in AF_INET :51820 198.18.0.12
        0600 0500 1900 0000                     //     WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL 25
        2000 0980                               //     WGPEER_A_ALLOWEDIPS | NLA_F_NESTED
          1c00 0080                             //       allowed IP 0
            0600 0100 0200 0000                 //         WGALLOWEDIP_A_FAMILY AF_INET
            0800 0200 c6130600                  //         WGALLOWEDIP_A_IPADDR 198.19.6.0
            0500 0300 18 000000                 //         WGALLOWEDIP_A_CIDR_MASK 24`);
  assert.equal(msg.toString('hex'), expected.toString('hex'));
});

test('WG_CMD_SET_DEVICE removing a peer by key, with an IPv6 endpoint and allowed IP on another', () => {
  const msg = encodeSetDevice(
    0x1a,
    { ifindex: 9, peers: [{ publicKey: key(0x44), remove: true }, { publicKey: key(0x55), endpoint: { ip: mustParseIP('2001:db8::12'), port: 51821 }, allowedIPs: [parseCIDR('2001:db8:100:6::/64')!] }] },
    8,
    0,
  );
  const expected = hex(`
    c4000000 1a00 0500 08000000 00000000        // len 196
    01 01 0000
    0800 0100 09000000                          // WGDEVICE_A_IFINDEX 9
    a800 0880                                   // WGDEVICE_A_PEERS, 168 bytes
      3000 0080                                 //   peer: key + REMOVE_ME
        2400 0100 ${'44'.repeat(32)}
        0800 0300 01000000
      7400 0080                                 //   peer: 116 bytes
        2400 0100 ${'55'.repeat(32)}
        2000 0400 0a00 ca6d 00000000 20010db8000000000000000000000012 00000000  // sockaddr_in6 AF_INET6 :51821
        2c00 0980                               //   WGPEER_A_ALLOWEDIPS, 44 bytes
          2800 0080
            0600 0100 0a00 0000                 //     AF_INET6
            1400 0200 20010db8010000060000000000000000
            0500 0300 40 000000                 //     /64`);
  assert.equal(msg.toString('hex'), expected.toString('hex'));
});

test('WG_CMD_GET_DEVICE: the dump request, and replies coalesced across messages into one device', () => {
  assert.deepEqual(
    encodeGetDevice(0x1a, { ifname: 'flannel-wg' }, 3, 0),
    hex(`24000000 1a00 0503 03000000 00000000        // REQUEST|ACK|DUMP
         00 01 0000                                  // WG_CMD_GET_DEVICE
         0f00 0200 666c616e6e656c2d776700 00`),
  );
  // Message 1: the device and peer 0 with one allowed IP; message 2: the same peer continued (key
  // and one more allowed IP only) and peer 1; then NLMSG_DONE.
  const m1 = hex(`
    00010000 1a00 0200 03000000 00000000        // NLM_F_MULTI, len 256
    00 01 0000
    0800 0100 05000000                          // WGDEVICE_A_IFINDEX 5
    0f00 0200 666c616e6e656c2d776700 00         // WGDEVICE_A_IFNAME
    0600 0600 6cca 0000                         // LISTEN_PORT 51820
    2400 0400 ${'66'.repeat(32)}                // WGDEVICE_A_PUBLIC_KEY
    a800 0880                                   // PEERS, 168 bytes
      a400 0080                                 //   peer 0, 164 bytes
        2400 0100 ${'22'.repeat(32)}
        2000 0400 0a00 ca6d 00000000 20010db8000000000000000000000012 00000000
        1400 0600 001c756700000000 0500000000000000   // LAST_HANDSHAKE_TIME {1735728128, 5}
        0c00 0700 5c00000000000000              //   RX_BYTES 92
        0c00 0800 d400000000000000              //   TX_BYTES 212
        0600 0500 1900 0000                     //   KEEPALIVE 25
        0800 0a00 01000000                      //   PROTOCOL_VERSION 1
        2000 0980                               //   ALLOWEDIPS
          1c00 0080 0600 0100 0200 0000 0800 0200 c6130600 0500 0300 18 000000`);
  const m2 = hex(`
    a8000000 1a00 0200 03000000 00000000        // len 168
    00 01 0000
    0f00 0200 666c616e6e656c2d776700 00
    8400 0880                                   // PEERS, 132 bytes
      5400 0080                                 //   peer 0 again: key + 1 allowed IP
        2400 0100 ${'22'.repeat(32)}
        2c00 0980 2800 0080 0600 0100 0a00 0000 1400 0200 20010db8010000060000000000000000 0500 0300 40 000000
      2c00 0080                                 //   peer 1: key only
        2400 0100 ${'77'.repeat(32)}
        0400 0980`);
  const done = hex('14000000 0300 0200 03000000 00000000 00000000');
  const r = decodeGetDevice(0x1a, [m1, Buffer.concat([m2, done])]);
  assert.ok(r.ok, r.ok ? '' : r.error);
  const d = r.value;
  assert.equal(d.ifindex, 5);
  assert.equal(d.ifname, 'flannel-wg');
  assert.equal(d.listenPort, 51820);
  assert.deepEqual(d.publicKey, key(0x66));
  assert.equal(d.peers.length, 2, 'peer 0 continued, not duplicated');
  const p = d.peers[0]!;
  assert.equal(`[${formatIP(p.endpoint!.ip)}]:${p.endpoint!.port}`, '[2001:db8::12]:51821');
  assert.equal(p.lastHandshakeSec, 1735728128n);
  assert.equal(p.lastHandshakeNsec, 5n);
  assert.equal(p.rxBytes, 92n);
  assert.equal(p.txBytes, 212n);
  assert.equal(p.persistentKeepalive, 25);
  assert.equal(p.protocolVersion, 1);
  assert.deepEqual(p.allowedIPs.map(formatCIDR), ['198.19.6.0/24', '2001:db8:100:6::/64']);
  assert.deepEqual(d.peers[1]!.publicKey, key(0x77));
  assert.deepEqual(d.peers[1]!.allowedIPs, []);
});

test('GET_DEVICE errors are values: NLMSG_DONE with an errno, truncation, a peer without a key, no DONE', () => {
  const doneErr = hex('14000000 0300 0200 03000000 00000000 edffffff'); // -19 ENODEV
  assert.deepEqual(decodeGetDevice(0x1a, [doneErr]), { ok: false, error: 'WG_CMD_GET_DEVICE: errno 19' });
  const m = hex(`1c000000 1a00 0200 03000000 00000000 00 01 0000 0800 0880 0400 0080`);
  const r = decodeGetDevice(0x1a, [m]);
  assert.equal(r.ok, false);
  assert.match((r as { error: string }).error, /peer without a 32-byte public key/);
  assert.equal(decodeGetDevice(0x1a, [hex('ff000000 1a00')]).ok, false);
  assert.equal(decodeGetDevice(0x1a, [hex('1c000000 1a00 0200 03000000 00000000 00 01 0000 0800 0100 05000000')]).ok, false, 'no NLMSG_DONE');
});

test('RTM_NEWLINK for a wireguard link, as `ip link add flannel-wg mtu 1420 type wireguard`', () => {
  assert.deepEqual(
    encodeNewWireguardLink('flannel-wg', 1420, 4, 0),
    hex(`4c000000 1000 0506 04000000 00000000       // RTM_NEWLINK, REQUEST|ACK|EXCL|CREATE
         00 00 0000 00000000 00000000 00000000      // ifinfomsg
         0f00 0300 666c616e6e656c2d776700 00        // IFLA_IFNAME
         0800 0400 8c050000                         // IFLA_MTU 1420
         1400 1280                                  // IFLA_LINKINFO | NLA_F_NESTED
           0e00 0100 77697265677561726400 0000      //   IFLA_INFO_KIND "wireguard"`),
  );
});
