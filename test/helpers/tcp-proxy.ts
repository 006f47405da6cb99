// A TCP proxy on 127.0.0.1 that a test controls, between a client under test and a real server (etcd):
// it forwards bytes both ways until told to fail in a way neither end sees.
//   partition(): every open connection stops forwarding both ways, silently (no FIN, no RST): what a
//     cut link looks like. Connections opened during the partition are accepted and black-holed too.
//     heal() forwards new connections again; connections black-holed stay dead until their client
//     closes them, which models TCP retransmission back-off outlasting the test (the 51 s of issue 29).
//   hideUpstreamResets(): when the server side closes or resets (etcd killed), the client's connection
//     is kept open and black-holed instead of closed: a node that never saw the reset.
import { createConnection, createServer, type Server, type Socket } from 'node:net';

interface Pair {
  client: Socket;
  upstream?: Socket;
  dead: boolean;
}

export class TcpProxy {
  private server?: Server;
  private readonly pairs = new Set<Pair>();
  private partitioned = false;
  private hideResets = false;
  /** Connections accepted so far (including black-holed ones). */
  accepted = 0;
  port = 0;

  private constructor(private readonly upstreamPort: number) {}

  static async start(upstreamPort: number): Promise<TcpProxy> {
    const p = new TcpProxy(upstreamPort);
    const server = createServer((s) => p.accept(s));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const addr = server.address();
    p.port = typeof addr === 'object' && addr ? addr.port : 0;
    p.server = server;
    return p;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Client connections the proxy holds open (forwarding or black-holed). */
  openConnections(): number {
    return this.pairs.size;
  }

  partition(): void {
    this.partitioned = true;
    for (const p of this.pairs) this.blackhole(p);
  }

  heal(): void {
    this.partitioned = false;
  }

  hideUpstreamResets(on = true): void {
    this.hideResets = on;
  }

  /** Stops forwarding on this pair for good; the client's bytes are read and dropped, nothing is sent back. */
  private blackhole(p: Pair): void {
    if (p.dead) return;
    p.dead = true;
    p.client.unpipe();
    p.upstream?.unpipe();
    p.client.removeAllListeners('data');
    p.client.on('data', () => {});
    // The server side goes quietly; the client never hears of it.
    p.upstream?.removeAllListeners('close');
    p.upstream?.removeAllListeners('end');
    p.upstream?.on('error', () => {});
    p.upstream?.destroy();
  }

  private accept(client: Socket): void {
    this.accepted++;
    const pair: Pair = { client, dead: false };
    this.pairs.add(pair);
    client.on('error', () => {});
    client.once('close', () => {
      this.pairs.delete(pair);
      pair.upstream?.destroy();
    });
    if (this.partitioned) {
      pair.dead = true;
      client.on('data', () => {});
      return;
    }
    const upstream = createConnection({ host: '127.0.0.1', port: this.upstreamPort });
    pair.upstream = upstream;
    upstream.on('error', () => {});
    // Ends and closes are passed on by hand (not by pipe()), so that they can be hidden.
    const upstreamGone = (): void => {
      if (pair.dead) return;
      if (this.hideResets) this.blackhole(pair);
      else client.destroy();
    };
    upstream.once('end', upstreamGone);
    upstream.once('close', upstreamGone);
    client.once('end', () => {
      if (!pair.dead) upstream.end();
    });
    client.pipe(upstream, { end: false });
    upstream.pipe(client, { end: false });
  }

  async close(): Promise<void> {
    for (const p of this.pairs) {
      p.upstream?.destroy();
      p.client.destroy();
    }
    this.pairs.clear();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
