// The UAPI socket of a userspace WireGuard device, where Debian's `wg` looks for it:
// `<dir>/<iface>.sock` (dir /var/run/wireguard, created 0755; the socket bound under umask 077 so
// only root may configure the device), answering get and set as wireguard-go does. A stale socket
// file (nobody answering) is replaced; a live one is an error.
import { mkdirSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { log } from '../../log.js';
import { EIO, formatErrno, formatGet, parseSet, UapiError, UapiFramer, type UapiDeviceState, type UapiSet } from './uapi-codec.js';

export const UAPI_DIR = '/var/run/wireguard';

/** The device behind the socket (the native engine's WireGuard, or a double in tests). */
export interface UapiBackend {
  get(): UapiDeviceState;
  /** Applies a parsed set request; throws UapiError (its errno goes back to the client). */
  set(req: UapiSet): void;
}

function canConnect(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

function listenUnder077(server: Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const old = process.umask(0o077);
    const done = (e?: Error) => {
      server.off('error', done);
      if (e) reject(e);
      else resolve();
    };
    server.once('error', done);
    try {
      server.listen(path, () => done());
    } finally {
      // listen() binds synchronously for a path, so the socket file is made under 077.
      process.umask(old);
    }
  });
}

export class UapiServer {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  readonly path: string;

  private constructor(
    path: string,
    private readonly backend: UapiBackend,
  ) {
    this.path = path;
    this.server = createServer((s) => this.serve(s));
  }

  static async open(iface: string, backend: UapiBackend, dir = UAPI_DIR): Promise<UapiServer> {
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    const srv = new UapiServer(join(dir, `${iface}.sock`), backend);
    try {
      await listenUnder077(srv.server, srv.path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw e;
      if (await canConnect(srv.path)) throw new Error(`UAPI socket ${srv.path} is in use by another process`);
      unlinkSync(srv.path);
      await listenUnder077(srv.server, srv.path);
    }
    return srv;
  }

  private serve(s: Socket): void {
    this.sockets.add(s);
    s.once('close', () => this.sockets.delete(s));
    s.on('error', () => s.destroy());
    s.setEncoding('utf8');
    const framer = new UapiFramer();
    s.on('data', (chunk: string) => {
      for (const req of framer.push(chunk)) {
        if (req.op === 'bad') {
          log.error(`UAPI ${this.path}: ${req.message}`);
          if (req.close) {
            s.destroy();
            return;
          }
          s.write(formatErrno(req.errno));
          continue;
        }
        let reply: string;
        try {
          reply = req.op === 'get' ? formatGet(this.backend.get()) + formatErrno(0) : (this.backend.set(parseSet(req.lines)), formatErrno(0));
        } catch (e) {
          const errno = e instanceof UapiError ? e.errno : EIO;
          log.error(`UAPI ${this.path}: ${(e as Error).message}`);
          reply = formatErrno(errno);
        }
        s.write(reply);
      }
    });
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    try {
      unlinkSync(this.path);
    } catch {
      // Node removes the socket file on close; gone already is fine.
    }
  }
}
