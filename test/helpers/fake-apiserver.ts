// The tests' Kubernetes API server (the implementation lives in src/lab so `flannelctl lab --store kube`
// can run it too) plus a kubeconfig writer that points the real client library at it.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export { FakeApiServer, mergePatch, type FakeNodeSpec, type JsonObject, type RecordedRequest } from '../../src/lab/fake-apiserver.js';

/** Writes a kubeconfig (YAML, as kubectl writes them) whose current context is `server`; returns its path. */
export function writeKubeconfig(server: string, dir = mkdtempSync(join(tmpdir(), 'flannelts-kubeconfig-'))): string {
  const path = join(dir, 'kubeconfig');
  writeFileSync(
    path,
    [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      '- name: fake',
      '  cluster:',
      `    server: ${server}`,
      'users:',
      '- name: flannel',
      '  user:',
      '    token: test-token',
      'contexts:',
      '- name: fake',
      '  context:',
      '    cluster: fake',
      '    user: flannel',
      'current-context: fake',
      '',
    ].join('\n'),
  );
  return path;
}
