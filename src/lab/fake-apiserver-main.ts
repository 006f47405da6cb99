// Runs the fake Kubernetes API server as its own process, so a lab can start it inside its underlay
// namespace (where the node namespaces reach it). Usage:
//   node fake-apiserver-main.js --host 198.18.0.1 --port 6443 --nodes '[{"name":"n1","podCIDR":"198.19.1.0/24"}]' [--rv N] [--bookmark-ms N]
// Prints one JSON line {"ready":true,"url":...} when listening. Control over stdin, one JSON command a
// line, one JSON answer a line: {"op":"nodes"} -> {"nodes":[...],"resourceVersion":N},
// {"op":"add","name":"n4","podCIDR":...,"podCIDRs":[...],"annotations":{...}}, {"op":"delete","name":"n1"},
// {"op":"annotate","name":"n1","annotations":{...}} (null deletes a key). Exits on SIGTERM / SIGINT.
import { createInterface } from 'node:readline';
import { FakeApiServer, type FakeNodeSpec, type JsonObject } from './fake-apiserver.js';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? (process.argv[i + 1] ?? def) : def;
}

async function main(): Promise<void> {
  const server = new FakeApiServer({ resourceVersion: Number(arg('rv', '100')) });
  for (const spec of JSON.parse(arg('nodes', '[]')) as FakeNodeSpec[]) server.addNode(spec);
  // A real API server sends a bookmark about once a minute; the lab's, sooner, keeps quiet watches alive.
  server.bookmarkMs = Number(arg('bookmark-ms', '5000'));
  await server.start(arg('host', '127.0.0.1'), Number(arg('port', '0')));
  process.stdout.write(JSON.stringify({ ready: true, url: server.url }) + '\n');
  const stop = (): void => {
    void server.stop().then(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    let answer: unknown;
    try {
      const cmd = JSON.parse(line) as { op?: string; name?: string; podCIDR?: string; podCIDRs?: string[]; annotations?: Record<string, string | null> };
      if (cmd.op === 'nodes') answer = { nodes: [...server.nodes.values()], resourceVersion: server.resourceVersion };
      else if (cmd.op === 'add' && cmd.name) {
        const annotations = Object.fromEntries(Object.entries(cmd.annotations ?? {}).filter((e): e is [string, string] => e[1] !== null));
        server.addNode({ name: cmd.name, podCIDR: cmd.podCIDR, podCIDRs: cmd.podCIDRs, annotations });
        answer = { ok: true };
      } else if (cmd.op === 'delete' && cmd.name) {
        server.deleteNode(cmd.name);
        answer = { ok: true };
      } else if (cmd.op === 'annotate' && cmd.name) {
        server.updateNode(cmd.name, (n) => {
          const meta = n.metadata as JsonObject;
          const ann = { ...((meta.annotations as Record<string, string> | undefined) ?? {}) };
          for (const [k, v] of Object.entries(cmd.annotations ?? {})) {
            if (v === null) delete ann[k];
            else ann[k] = v;
          }
          meta.annotations = ann;
        });
        answer = { ok: true };
      } else answer = { error: `unknown command ${line}` };
    } catch (e) {
      answer = { error: (e as Error).message };
    }
    process.stdout.write(JSON.stringify(answer) + '\n');
  });
  // stdin EOF is not a stop request: a kept lab (`flannelctl lab --keep`) outlives its parent.
}

main().catch((e: unknown) => {
  process.stderr.write(`fake-apiserver: ${(e as Error).message}\n`);
  process.exit(1);
});
