#!/usr/bin/env -S node --max-semi-space-size=1 --no-opt
// flanneld, drop-in: same flags, FLANNELD_* environment, net-conf.json, subnet.env and lease stores.
// The shebang's node flags are FLANNELD_NODE_FLAGS (./node-flags.ts, which says why); keep them equal.
import type { Server } from 'node:http';
import { FlagError, formatHelp, parseFlags, toOptions, unimplementedInUse, type FlanneldOptions } from '../config/flags.js';
import { Daemon } from '../daemon.js';
import { BlackholeRoutes } from '../blackhole.js';
import { execIptablesRunner } from '../firewall/iptables.js';
import { execNftRunner } from '../firewall/nft.js';
import { TrafficRules } from '../firewall/traffic.js';
import { startHealthz } from '../http.js';
import { startStatusServer } from '../status.js';
import { selectExternalInterface } from '../iface.js';
import { log, setLogFormat, setVerbosity } from '../log.js';
import { readPreviousSubnets, writeSubnetEnv } from '../subnet/subnetenv.js';
import type { Manager } from '../subnet/types.js';
import { VERSION } from '../version.js';
import { capsToKeep, dropCapabilities, iptablesVersion } from '../security/caps.js';
import { sdNotify } from '../native/sd-notify.js';

/** Setup is done (TUN open, devices made, sockets and listeners bound): keep only what runtime needs. */
function dropPrivileges(firewall: boolean): void {
  try {
    const r = dropCapabilities(capsToKeep({ firewall, iptablesVersion: firewall ? iptablesVersion() : undefined }));
    const unreached = r.unreached.length > 0 ? `; ${r.unreached.length} idle thread(s) block signals and kept theirs: ${r.unreached.join(',')}` : '';
    log.info(`Dropped capabilities: kept [${r.kept.join(',')}] in ${r.threads} thread(s)${unreached}`);
  } catch (e) {
    // Networking keeps working with more privilege than needed; say so loudly rather than exit.
    log.error(`Could not drop capabilities: ${(e as Error).message}`);
  }
}

/** systemd's Type=notify: READY=1 to $NOTIFY_SOCKET; a failure is logged, as flannel does, never fatal. */
function notifyReady(): void {
  log.info('flannel is ready');
  try {
    if (sdNotify('READY=1')) log.info('Notified systemd: READY=1');
  } catch (e) {
    log.error(`Failed to notify systemd the message READY=1: ${(e as Error).message}`);
  }
}

async function createManager(opts: FlanneldOptions): Promise<Manager> {
  if (opts.kubeSubnetMgr) {
    const { createKubeManager } = await import('../subnet/kube/kube-manager.js');
    return createKubeManager({
      apiUrl: opts.kubeApiUrl,
      kubeconfigFile: opts.kubeConfigFile,
      annotationPrefix: opts.kubeAnnotationPrefix,
      netConfPath: opts.netConfigPath,
      setNodeNetworkUnavailable: opts.setNodeNetworkUnavailable,
      env: process.env,
      livenessMs: opts.watchLivenessSeconds * 1000,
    });
  }
  if (opts.subnetStoreDir !== '') {
    const { FileManager } = await import('../subnet/file/file-manager.js');
    return new FileManager({ dir: opts.subnetStoreDir });
  }
  const { EtcdManager } = await import('../subnet/etcd/etcd-manager.js');
  return new EtcdManager({
    endpoints: opts.etcdEndpoints,
    prefix: opts.etcdPrefix,
    keyFile: opts.etcdKeyfile,
    certFile: opts.etcdCertfile,
    caFile: opts.etcdCAFile,
    username: opts.etcdUsername,
    password: opts.etcdPassword,
    livenessMs: opts.watchLivenessSeconds * 1000,
    relistMs: opts.etcdRelistSeconds * 1000,
  });
}

function redacted(opts: FlanneldOptions): string {
  return JSON.stringify({ ...opts, etcdPassword: opts.etcdPassword ? '<redacted>' : '' });
}

async function main(argv: string[]): Promise<number> {
  let opts: FlanneldOptions;
  let parsed;
  try {
    parsed = parseFlags(argv, process.env);
    if (parsed.help) {
      process.stderr.write(formatHelp('flanneld'));
      return 0;
    }
    opts = toOptions(parsed);
  } catch (e) {
    if (e instanceof FlagError) {
      process.stderr.write(`flanneld: ${e.message} (see flanneld --help)\n`);
      return e.exitCode;
    }
    throw e;
  }
  if (opts.version) {
    // flannel prints its version to stderr (fmt.Fprintln(os.Stderr, ...)).
    process.stderr.write(`${VERSION}\n`);
    return 0;
  }
  setVerbosity(opts.verbosity);
  setLogFormat(opts.logFormat);
  log.info(`flannelts ${VERSION} (flanneld-compatible)`);
  // flannel logs a FLANNELD_* value it cannot set and goes on with the flag's default.
  for (const e of parsed.envErrors) log.error(`Failed to set flag FLANNELD from env: ${e}`);
  log.info(`CLI flags config: ${redacted(opts)}`);

  const unimplemented = unimplementedInUse(parsed);
  for (const f of unimplemented.warn) log.warning(`flag ${f} is accepted but not implemented yet in flannelts ${VERSION}: it has no effect`);
  if (unimplemented.fatal.length > 0) {
    log.error(`flag ${unimplemented.fatal.join(', ')} is not implemented yet in flannelts ${VERSION}; refusing to start with another lease store instead`);
    return 1;
  }

  let manager: Manager;
  try {
    manager = await createManager(opts);
  } catch (e) {
    // A bad kubeconfig, annotation prefix or missing node name: one clear line, exit 1.
    log.error(`Failed to create SubnetManager: ${(e as Error).message}`);
    return 1;
  }
  log.info(`Created subnet manager: ${manager.name}`);
  const { nativePlatform } = await import('../platform.js');
  const platform = nativePlatform(opts);

  const daemon = new Daemon(
    {
      manager,
      backends: platform.backends,
      selectInterface: (config, stored) =>
        selectExternalInterface(
          platform.systemView(),
          {
            iface: opts.iface,
            ifaceRegex: opts.ifaceRegex,
            ifaceCanReach: opts.ifaceCanReach,
            publicIP: stored?.publicIP ?? opts.publicIP,
            publicIPv6: stored?.publicIPv6 ?? opts.publicIPv6,
            enableIPv4: config.enableIPv4,
            enableIPv6: config.enableIPv6,
          },
          (m) => log.info(m),
        ),
      subnetFileIO: { readPrevious: readPreviousSubnets, write: writeSubnetEnv },
      // Always: nftables mode and the clean-up of the other mode's rules run even with both options off.
      firewall: new TrafficRules(
        { iptables: execIptablesRunner(), nft: execNftRunner() },
        {
          ipMasq: opts.ipMasq,
          forwardRules: opts.iptablesForwardRules,
          resyncSeconds: opts.iptablesResync,
          randomFullyDisable: opts.ipMasqRandomFullyDisable,
          brNetfilterCheck: opts.brNetfilterCheck,
        },
      ),
      nodeRoutes: opts.ipBlackholeRoute ? new BlackholeRoutes(platform.routeOps(), opts.iptablesResync) : undefined,
    },
    opts,
  );

  let healthz: Server | undefined;
  let status: Server | undefined;
  let stopping: Promise<number> | undefined;
  const shutdown = (sig: string): Promise<number> => {
    stopping ??= (async () => {
      log.info(`shutdownHandler sent cancel signal... (${sig})`);
      await daemon.stop();
      healthz?.close();
      status?.close();
      platform.close();
      log.info('Exiting cleanly...');
      return 0;
    })();
    return stopping;
  };
  log.info('Installing signal handlers');
  const exitOn = (sig: NodeJS.Signals): void => {
    process.once(sig, () => void shutdown(sig).then((code) => process.exit(code)));
  };
  exitOn('SIGTERM');
  exitOn('SIGINT');

  try {
    if (opts.healthzPort > 0) {
      // prom-client costs a few MiB of RSS: load it only when /metrics can be served.
      const { createMetrics } = await import('../metrics.js');
      healthz = await startHealthz(opts.healthzIP, opts.healthzPort, { isReady: () => daemon.ready, metrics: createMetrics(daemon) });
    }
    if (opts.statusSocket !== '') status = await startStatusServer(opts.statusSocket, daemon);
    await daemon.start();
  } catch (e) {
    log.error((e as Error).message);
    await daemon.stop().catch(() => {});
    healthz?.close();
    status?.close();
    platform.close();
    return 1;
  }
  if (process.getuid?.() === 0) dropPrivileges(opts.ipMasq || opts.iptablesForwardRules);
  // READY=1 only with /readyz ready (start() returns unready when a signal stopped it early).
  if (daemon.ready) notifyReady();
  // Keep running: timers are unref'd, so hold the loop open until a signal arrives.
  await new Promise<void>(() => {
    setInterval(() => {}, 1 << 30);
  });
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`flanneld: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  },
);
