// The healthz listener (src/http.ts): flanneld v0.28.9's /healthz and /readyz answers, which the
// manifest's liveness and readiness probes read.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { startHealthz } from '../../src/http.js';

async function get(port: number, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, body: await res.text() };
}

test('/healthz is always 200; /readyz is 503 until the daemon is ready, then 200', async () => {
  let ready = false;
  const server = await startHealthz('127.0.0.1', 0, { isReady: () => ready });
  try {
    const { port } = server.address() as AddressInfo;
    assert.deepEqual(await get(port, '/healthz'), { status: 200, body: 'flanneld is running' });
    assert.deepEqual(await get(port, '/readyz'), { status: 503, body: 'flanneld is not ready yet' });
    ready = true;
    assert.deepEqual(await get(port, '/readyz'), { status: 200, body: 'flanneld is ready' });
    assert.deepEqual(await get(port, '/readyz?verbose'), { status: 200, body: 'flanneld is ready' });
    assert.deepEqual(await get(port, '/healthz'), { status: 200, body: 'flanneld is running' });
    ready = false;
    assert.equal((await get(port, '/readyz')).status, 503, 'asked on every request');
    assert.equal((await get(port, '/readyzz')).status, 404);
    assert.equal((await get(port, '/metrics')).status, 404, 'no registry, no /metrics');
  } finally {
    server.close();
  }
});

test('/metrics is served when a registry is given', async () => {
  const server = await startHealthz('127.0.0.1', 0, { isReady: () => true, metrics: new Registry() });
  try {
    const { port } = server.address() as AddressInfo;
    assert.equal((await get(port, '/metrics')).status, 200);
  } finally {
    server.close();
  }
});

test('a port in use is one clear error', async () => {
  const first = await startHealthz('127.0.0.1', 0, { isReady: () => true });
  try {
    const { port } = first.address() as AddressInfo;
    await assert.rejects(startHealthz('127.0.0.1', port, { isReady: () => true }), new RegExp(`healthz: listen on 127\\.0\\.0\\.1:${port}: EADDRINUSE`));
  } finally {
    first.close();
  }
});
