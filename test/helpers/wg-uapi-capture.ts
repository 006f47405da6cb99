// Captures the bytes Debian's `wg` writes to and reads from wireguard-go's UAPI socket (strace on
// wg), for the UAPI codec's fixture. wireguard-go runs in a netns this run creates, in its own mount
// namespace with a tmpfs /run, so the host's /var/run/wireguard is never touched:
//   node dist/test/helpers/wg-uapi-capture.js --write test/fixtures/wireguard/uapi-wg.json
// Needs root, wireguard-go, wireguard-tools and strace (only to regenerate the fixture).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NetnsSet, run } from '../../src/lab/netns.js';
import { sleep } from '../../src/util/sleep.js';
import { FIXTURE_KEYS } from './wg-interop.js';

export interface UapiExchange {
  /** The wg command line (after `wg`). */
  command: string[];
  /** What wg wrote to the socket and what it read back, hex. */
  request: string;
  reply: string;
}

/** Bytes of the connected UAPI socket's writes and reads in `strace -xx` output. */
export function parseStrace(text: string): { written: Buffer; read: Buffer } {
  let fd = -1;
  const written: Buffer[] = [];
  const read: Buffer[] = [];
  const bytes = (s: string): Buffer => Buffer.from(s.replace(/\\x/g, ''), 'hex');
  for (const line of text.split('\n')) {
    const c = /^connect\((\d+), \{sa_family=AF_UNIX, sun_path=/.exec(line);
    if (c && / = 0$/.test(line)) fd = Number(c[1]);
    const w = /^write\((\d+), "((?:\\x[0-9a-f]{2})*)", \d+\) = \d+/.exec(line);
    if (w && Number(w[1]) === fd) written.push(bytes(w[2]!));
    const r = /^read\((\d+), "((?:\\x[0-9a-f]{2})*)", \d+\) = \d+/.exec(line);
    if (r && Number(r[1]) === fd) read.push(bytes(r[2]!));
  }
  return { written: Buffer.concat(written), read: Buffer.concat(read) };
}

async function capture(): Promise<UapiExchange[]> {
  const set = new NetnsSet(`fwu${process.pid % 10000}`);
  const tmp = mkdtempSync('/tmp/flannelts-uapi-');
  try {
    const ns = set.add('a');
    const wgo = ns.spawn('sh', ['-c', 'mount -t tmpfs flannelts-wg /run && mkdir -p /run/wireguard && exec wireguard-go -f wgu'], {
      env: { ...process.env, WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD: '1', LOG_LEVEL: 'error' },
    });
    const inNs = (args: string[]) => run('nsenter', ['-t', String(wgo.pid), '-m', '-n', ...args]);
    for (let i = 0; i < 100; i++) {
      try {
        inNs(['wg', 'show', 'wgu']);
        break;
      } catch {
        await sleep(50);
      }
    }
    const k = FIXTURE_KEYS;
    writeFileSync(join(tmp, 'key'), k.ours.private + '\n', { mode: 0o600 });
    writeFileSync(join(tmp, 'psk'), k.psk + '\n', { mode: 0o600 });
    const theirs = run('wg', ['pubkey'], { input: k.theirs.private + '\n' }).trim();
    const commands = [
      ['set', 'wgu', 'private-key', join(tmp, 'key'), 'listen-port', '51820'],
      ['set', 'wgu', 'peer', theirs, 'preshared-key', join(tmp, 'psk'), 'endpoint', '198.18.0.2:51821', 'persistent-keepalive', '25', 'allowed-ips', '198.19.2.0/24,2001:db8:100:2::/64'],
      ['show', 'wgu', 'dump'],
      ['show', 'wgu'],
      ['set', 'wgu', 'peer', theirs, 'remove'],
    ];
    const out: UapiExchange[] = [];
    for (const command of commands) {
      // strace writes its trace on stderr; wg's own output is not needed.
      const quoted = command.map((a) => `'${a}'`).join(' ');
      const text = inNs(['sh', '-c', `strace -xx -s 65535 -e trace=connect,read,write wg ${quoted} 2>&1 >/dev/null || true`]);
      const { written, read } = parseStrace(text);
      out.push({ command: command.map((a) => (a.startsWith(tmp) ? a.replace(tmp, '<tmp>') : a)), request: written.toString('hex'), reply: read.toString('hex') });
    }
    return out;
  } finally {
    await set.destroy();
    rmSync(tmp, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const at = process.argv.indexOf('--write');
  const rec = await capture();
  const text = JSON.stringify(rec, null, 2) + '\n';
  if (at > 0 && process.argv[at + 1]) writeFileSync(process.argv[at + 1]!, text);
  else process.stdout.write(text);
}
