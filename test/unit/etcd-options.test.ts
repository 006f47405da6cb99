import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { setLogSink } from '../../src/log.js';
import { createServer } from 'node:net';
import { DEFAULT_ETCD_ENDPOINTS, EtcdManager, etcdClientOptions, splitEndpoints } from '../../src/subnet/etcd/etcd-manager.js';

const dir = mkdtempSync(join(tmpdir(), 'flannelts-etcdopts-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function captureLogs<T>(fn: () => T): { result: T; lines: string[] } {
  const lines: string[] = [];
  const prev = setLogSink((l) => lines.push(l));
  try {
    return { result: fn(), lines };
  } finally {
    setLogSink(prev);
  }
}

describe('etcd client options from flannel flags', () => {
  test('comma-separated endpoints, flannel default', () => {
    assert.deepEqual(splitEndpoints(DEFAULT_ETCD_ENDPOINTS), ['http://127.0.0.1:4001', 'http://127.0.0.1:2379']);
    assert.deepEqual(splitEndpoints(' http://127.0.0.1:2379 ,, '), ['http://127.0.0.1:2379']);
    assert.deepEqual(splitEndpoints(['http://127.0.0.1:2379']), ['http://127.0.0.1:2379']);
  });
  test('empty endpoints are an error naming the flag', () => {
    assert.throws(() => etcdClientOptions({ endpoints: ' , ' }), /-etcd-endpoints " , " is empty/);
  });
  test('no TLS → flannel warning, no credentials; username/password passed', () => {
    const { result, lines } = captureLogs(() => etcdClientOptions({ endpoints: 'http://127.0.0.1:2379', username: 'flannel', password: 'pw' }));
    assert.equal(result.credentials, undefined);
    assert.deepEqual(result.auth, { username: 'flannel', password: 'pw' });
    assert.ok(lines.some((l) => l.startsWith('W') && l.includes('connecting to etcd with http. This is insecure')));
  });
  test('TLS files are read; no warning', () => {
    for (const f of ['key.pem', 'cert.pem', 'ca.pem']) writeFileSync(join(dir, f), `-----${f}-----`);
    const { result, lines } = captureLogs(() =>
      etcdClientOptions({ endpoints: 'https://127.0.0.1:2379', keyFile: join(dir, 'key.pem'), certFile: join(dir, 'cert.pem'), caFile: join(dir, 'ca.pem') }),
    );
    assert.equal(result.credentials?.privateKey?.toString(), '-----key.pem-----');
    assert.equal(result.credentials?.certChain?.toString(), '-----cert.pem-----');
    assert.equal(result.credentials?.rootCertificate.toString(), '-----ca.pem-----');
    assert.equal(lines.length, 0);
  });
  test('unreadable TLS file names the flag and path', () => {
    captureLogs(() =>
      assert.throws(
        () => etcdClientOptions({ endpoints: 'https://127.0.0.1:2379', keyFile: join(dir, 'absent.pem'), certFile: join(dir, 'cert.pem') }),
        /-etcd-keyfile .*absent\.pem cannot be read/,
      ),
    );
  });
  test('unreachable etcd: config fetch is logged and retried until aborted, never a crash', async () => {
    // A port that was free a moment ago: nothing listens there.
    const port = await new Promise<number>((resolve) => {
      const srv = createServer().listen(0, '127.0.0.1', () => {
        const addr = srv.address();
        srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 1));
      });
    });
    const lines: string[] = [];
    const prev = setLogSink((l) => lines.push(l));
    const m = new EtcdManager({ endpoints: `http://127.0.0.1:${port}`, configRetryMs: 50, requestTimeoutMs: 300 });
    try {
      await assert.rejects(m.getNetworkConfig(AbortSignal.timeout(1500)));
    } finally {
      setLogSink(prev);
      await m.close();
    }
    const fetchErrors = lines.filter((l) => l.includes("Couldn't fetch network config"));
    assert.ok(fetchErrors.length >= 2, `retried: ${lines.join(' / ')}`);
  });
});
