// Readiness end to end, per lease store: a daemon that cannot get its config yet answers /readyz 503;
// once it holds the lease, runs the backend, has its traffic rules in and subnet.env written it answers
// 200, and only then sends READY=1 to the NOTIFY_SOCKET the test owns. A daemon that cannot write
// subnet.env never turns ready and sends nothing (flannel sends READY=1 then).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { existsSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { Lab, type LabNode } from '../../src/lab/lab.js';
import { LAB_ETCD_PREFIX } from '../../src/lab/lab-etcd.js';
import { isAlive } from '../../src/util/process.js';
import { binary, need, rootAndNetns, suiteNeeds } from '../helpers/prereq.js';
import { useLab } from '../helpers/lab.js';
import { NotifySocket } from '../helpers/notify-socket.js';
import { eventually } from '../helpers/lab-probe.js';

const WATCH = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'readyz-watch.js');
const PORT = 8081;
const READYZ = `http://127.0.0.1:${PORT}/readyz`;

interface Answer {
  status: number | 'refused';
  body: string;
  subnetEnv?: boolean;
  rules?: number;
}

/** The /readyz watcher (test/fixtures/readyz-watch.ts) in the node's namespace, its answers collected. */
function watchReadyz(node: LabNode): { child: ChildProcess; answers: Answer[] } {
  const child = node.ns.spawn(process.execPath, [WATCH, READYZ, join(node.dir, 'subnet.env'), '5'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const answers: Answer[] = [];
  createInterface({ input: child.stdout! }).on('line', (l) => answers.push(JSON.parse(l) as Answer));
  return { child, answers };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

const flannelRuleCount = (node: LabNode): number =>
  node.ns.exec('iptables-save', []).split('\n').filter((l) => /^-A (POSTROUTING -.*FLANNEL-POSTRTG|FORWARD -.*FLANNEL-FWD|FLANNEL-POSTRTG|FLANNEL-FWD) /.test(l)).length;

/** Takes the lab's network config away from the daemons (file, etcd key or net-conf.json); returns how to put it back. */
function holdConfig(lab: Lab): () => Promise<void> {
  switch (lab.opts.store) {
    case 'etcd': {
      const key = `${LAB_ETCD_PREFIX}/config`;
      void lab.etcdDelete(key);
      return () => lab.etcdPut(key, JSON.stringify(lab.netConf()));
    }
    case 'kube': {
      const file = join(lab.dir, 'net-conf.json');
      renameSync(file, `${file}.held`);
      return async () => renameSync(`${file}.held`, file);
    }
    default: {
      const file = join(lab.storeDir, 'config');
      renameSync(file, `${file}.held`);
      return async () => renameSync(`${file}.held`, file);
    }
  }
}

for (const store of ['file', 'etcd', 'kube'] as const) {
  const prereqs = [rootAndNetns(), binary('python3'), binary('iptables-restore'), ...(store === 'etcd' ? [binary('etcd')] : [])];
  describe(`readiness with the ${store} store`, suiteNeeds(...prereqs), () => {
    let lab: Lab;
    let notifyAddress: string | undefined;
    let extraArgs: string[] = [];
    useLab(
      {
        nodes: 1,
        backend: 'vxlan',
        ipv6: false,
        store,
        daemonArgs: ['-ip-masq', `-healthz-port=${PORT}`],
        nodeArgs: () => extraArgs,
        nodeEnv: (): Record<string, string> => (notifyAddress ? { NOTIFY_SOCKET: notifyAddress } : {}),
      },
      (l) => (lab = l),
    );

    test('/readyz 503 while the config is missing, 200 only with subnet.env and the rules; READY=1 after it', async (t) => {
      if (!need(t, ...prereqs)) return;
      const node = lab.nodes[0]!;
      await lab.stopDaemon(node);
      rmSync(join(node.dir, 'subnet.env'));
      assert.equal(flannelRuleCount(node), 0, 'a clean stop removed the rules');
      const restore = holdConfig(lab);
      // An abstract name for one store (they live in the namespace), a path for the others.
      notifyAddress = store === 'etcd' ? `@flannelts-${lab.set.prefix}-notify` : join(node.dir, 'notify.sock');
      const sock = await NotifySocket.open(notifyAddress, { readyzUrl: READYZ, spawner: (c, a, o) => node.ns.spawn(c, a, o) });
      const watch = watchReadyz(node);
      try {
        lab.startDaemon(node);
        assert.ok(await eventually(() => watch.answers.some((a) => a.status === 503), 20_000, 20), `no 503 from /readyz: ${JSON.stringify(watch.answers)}\n${lab.daemonLog(node, 20)}`);
        assert.equal(watch.answers.find((a) => a.status === 503)?.body, 'flanneld is not ready yet');
        await new Promise((r) => setTimeout(r, 1500));
        assert.ok(!watch.answers.some((a) => a.status === 200), 'not ready without a config');
        assert.equal(sock.received.length, 0, 'no READY=1 without a config');
        assert.equal(existsSync(join(node.dir, 'subnet.env')), false);

        await restore();
        const ready = await sock.waitFor('READY=1', 30_000).catch((e: Error) => assert.fail(`${e.message}\n${lab.daemonLog(node, 20)}`));
        assert.equal(ready.readyz, 200, '/readyz answered 200 when READY=1 arrived');
        assert.ok(await eventually(() => watch.answers.some((a) => a.status === 200), 5000, 20));
        const first = watch.answers.findIndex((a) => a.status === 200);
        const firstReady = watch.answers[first]!;
        assert.equal(firstReady.body, 'flanneld is ready');
        assert.equal(firstReady.subnetEnv, true, 'subnet.env existed at the first 200');
        const rules = flannelRuleCount(node);
        assert.ok(rules > 0);
        assert.equal(firstReady.rules, rules, 'every rule of the running daemon was in at the first 200');
        assert.deepEqual(watch.answers.slice(first + 1), [], 'ready stays ready');
        assert.ok(watch.answers.slice(0, first).every((a) => a.status !== 200));
        assert.equal(sock.received.filter((r) => r.message.includes('READY=1')).length, 1);
      } finally {
        await stop(watch.child);
        await sock.close();
      }
    });

    if (store === 'file') {
      test('a daemon that cannot write subnet.env exits without ever being ready or sending READY=1', async (t) => {
        if (!need(t, ...prereqs)) return;
        const node = lab.nodes[0]!;
        await lab.stopDaemon(node);
        notifyAddress = join(node.dir, 'notify2.sock');
        const sock = await NotifySocket.open(notifyAddress, { readyzUrl: READYZ, spawner: (c, a, o) => node.ns.spawn(c, a, o) });
        const watch = watchReadyz(node);
        try {
          extraArgs = ['-subnet-file=/dev/null/subnet.env'];
          lab.startDaemon(node);
          const pid = node.pid!;
          assert.ok(await eventually(() => !isAlive(pid), 30_000, 50), 'the daemon exits');
          assert.match(lab.daemonLog(node, 10), /subnet\.env: ENOTDIR/);
          await new Promise((r) => setTimeout(r, 300));
          assert.ok(watch.answers.some((a) => a.status === 503), JSON.stringify(watch.answers));
          assert.ok(!watch.answers.some((a) => a.status === 200), JSON.stringify(watch.answers));
          assert.equal(sock.received.length, 0, JSON.stringify(sock.received));
          assert.equal(flannelRuleCount(node), 0, 'its rules were removed on the way out');
        } finally {
          extraArgs = [];
          node.pid = undefined;
          await stop(watch.child);
          await sock.close();
        }
      });
    }
  });
}
