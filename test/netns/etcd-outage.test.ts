// etcd stopped while traffic flows: forwarding goes on, renewal fails and is retried (flannel: 1 min),
// and the daemon recovers when etcd returns, including its watch. The renew margin of 1439 minutes
// makes a 24 h lease due for renewal one minute after it was taken, so the outage hits a renewal.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Lab } from '../../src/lab/lab.js';
import { LAB_ETCD_PREFIX } from '../../src/lab/lab-etcd.js';
import { fetchStatus } from '../../src/status.js';
import { binary, need, rootAndNetns, suiteNeeds } from '../helpers/prereq.js';
import { useLab } from '../helpers/lab.js';
import { continuousEchoes, summary } from '../helpers/echo.js';
import type { ProbeResult } from '../../src/probe/prober.js';
import { sleep } from '../../src/util/sleep.js';


async function waitFor(what: string, timeoutMs: number, cond: () => Promise<boolean>): Promise<number> {
  const start = Date.now();
  while (Date.now() - start < timeoutMs) {
    if (await cond()) return Date.now() - start;
    await sleep(500);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

describe('etcd outage during traffic', suiteNeeds(rootAndNetns(), binary('etcd')), () => {
  let lab: Lab;
  useLab({ nodes: 3, backend: 'udp', ipv6: false, store: 'etcd', daemonArgs: ['-subnet-lease-renew-margin=1439'] }, (l) => (lab = l));

  test('forwarding continues, renewal retries, and the daemon recovers with its watch', { timeout: 240_000 }, async (t) => {
    if (!need(t, rootAndNetns(), binary('etcd'))) return;
    const [a, b, c] = lab.nodes as [typeof lab.nodes[0], typeof lab.nodes[0], typeof lab.nodes[0]];
    const status = () => fetchStatus(lab.statusSocket(a));
    const logLines0 = lab.daemonLog(a).split('\n').length;

    await lab.stopEtcd();
    const outageStart = Date.now();
    // Pod traffic for the whole outage: one ping every 200 ms.
    const ping = continuousEchoes(a.pod, b.podIP, 200);
    let result: ProbeResult;
    try {
      await waitFor('a failed renewal while etcd is down', 100_000, async () => (await status()).daemon.renewErrors >= 1);
      const outageMs = Date.now() - outageStart;
      await lab.restartEtcd();
      await waitFor('a successful renewal after etcd is back', 90_000, async () => (await status()).daemon.renewals >= 1);
      t.diagnostic(`outage ${Math.round(outageMs / 1000)} s survived; recovered ${Math.round((Date.now() - outageStart - outageMs) / 1000)} s after etcd returned`);
    } finally {
      result = await ping.stop();
    }
    const { sent, received } = result;
    t.diagnostic(`ping during the outage: ${received}/${sent}`);
    assert.ok(sent > 200, `ping ran: ${summary(result)}`);
    assert.ok(received >= sent - 2, `pod traffic lost during the etcd outage: ${received}/${sent}`);

    // The watch is live again: a lease removed in etcd reaches the daemon.
    await lab.stopDaemon(c);
    await lab.etcdDelete(`${LAB_ETCD_PREFIX}/subnets/${c.subnetEnv.FLANNEL_SUBNET!.replace(/\.1\/24$/, '.0-24')}`);
    await waitFor('the removal event after the outage', 20_000, async () => (await status()).peers.length === 1);
    const grew = lab.daemonLog(a).split('\n').length - logLines0;
    assert.ok(grew < 150, `${grew} log lines during the outage`);
  });
});
