// The status socket's client (flannelctl status, the lab, the tests) against a real status server on
// a Unix socket: no daemon, no root.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fetchStatus, startStatusServer } from '../../src/status.js';
import type { Daemon } from '../../src/daemon.js';

test('fetchStatus right after the daemon closed its idle connections: a new connection, never EPIPE', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'flannelts-status-'));
  const sock = join(dir, 'flannelts.sock');
  const daemon = { peers: new Map(), config: { backend: { type: 'vxlan' } }, watchStatus: () => undefined } as unknown as Daemon;
  const server = await startStatusServer(sock, daemon);
  try {
    for (let i = 0; i < 5; i++) {
      assert.equal((await fetchStatus(sock)).backend, 'vxlan');
      // What the server's keep-alive timeout does to an idle connection after 5 s, done at once: a
      // client that kept the connection for reuse writes its next request into a closed socket.
      server.closeIdleConnections();
    }
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  }
});
