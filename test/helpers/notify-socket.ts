// A systemd notification socket the test owns: Node cannot bind an AF_UNIX datagram socket, so a
// python3 child (on every machine that builds the addon: node-gyp needs it) binds it and prints each
// datagram as a JSON line. Given a /readyz URL it fetches it the moment a datagram arrives, so a test
// sees what /readyz answered when READY=1 came in. Ended by PID; a path socket is removed on close.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createInterface } from 'node:readline';

const LISTENER = `
import json, socket, sys, urllib.request, urllib.error
addr, url = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("\\0" + addr[1:] if addr.startswith("@") else addr)
print(json.dumps({"listening": addr}), flush=True)
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
while True:
    data = s.recv(65536)
    status = None
    if url:
        try:
            status = opener.open(url, timeout=2).status
        except urllib.error.HTTPError as e:
            status = e.code
        except Exception as e:
            status = str(e)
    print(json.dumps({"message": data.decode("utf-8", "replace"), "readyz": status}), flush=True)
`;

export interface Notification {
  message: string;
  /** HTTP status of /readyz fetched right after the datagram arrived (null without a URL). */
  readyz: number | string | null;
}

/** How the child is started: in this namespace, or in a network namespace (abstract names are per netns). */
export type Spawner = (cmd: string, args: string[], opts: SpawnOptions) => ChildProcess;

export class NotifySocket {
  readonly received: Notification[] = [];
  private constructor(
    readonly address: string,
    private readonly child: ChildProcess,
  ) {}

  /** Binds `address` ("/path" or "@abstract") and resolves once it is listening. */
  static async open(address: string, opts: { readyzUrl?: string; spawner?: Spawner } = {}): Promise<NotifySocket> {
    const spawner = opts.spawner ?? spawn;
    const child = spawner('python3', ['-c', LISTENER, address, opts.readyzUrl ?? ''], { stdio: ['ignore', 'pipe', 'pipe'] });
    const sock = new NotifySocket(address, child);
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const lines = createInterface({ input: child.stdout! });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`notify socket ${address}: listener did not start: ${stderr}`)), 10_000);
      child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`notify socket ${address}: listener exited (${code}): ${stderr}`)); });
      lines.once('line', () => { clearTimeout(timer); resolve(); });
    });
    lines.on('line', (l) => sock.received.push(JSON.parse(l) as Notification));
    return sock;
  }

  /** Resolves with the first datagram whose text includes `text`, or rejects after `timeoutMs`. */
  async waitFor(text: string, timeoutMs: number): Promise<Notification> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.received.find((r) => r.message.includes(text));
      if (hit) return hit;
      if (Date.now() > deadline) throw new Error(`no "${text}" on ${this.address} within ${timeoutMs} ms (got ${JSON.stringify(this.received)})`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async close(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise((r) => this.child.once('exit', r));
      this.child.kill('SIGTERM');
      await exited;
    }
    if (this.address.startsWith('/')) rmSync(this.address, { force: true });
  }
}
