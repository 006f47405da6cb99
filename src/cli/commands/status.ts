// `flannelctl status`: the running daemon's snapshot over its status socket, once or refreshed with rates.
import { Option, type Command } from 'commander';
import { DEFAULT_STATUS_SOCKET, fetchStatus, type StatusSnapshot } from '../../status.js';
import { sleep } from '../../util/sleep.js';
import { computeRates, formatStatus } from '../status-format.js';
import { positiveInt } from './args.js';

export function registerStatusCommand(program: Command): void {
  program
    .command('status')
    .description('show the running daemon: lease, backend, peers with per-peer counters, drops, routes')
    .option('-s, --socket <path>', 'the daemon\'s -status-socket', DEFAULT_STATUS_SOCKET)
    .option('--json', 'print the raw snapshot as JSON', false)
    .addOption(new Option('-w, --watch [seconds]', 'refresh every N seconds and show rates (Ctrl-C to stop)').argParser(positiveInt))
    .action(async (o: { socket: string; json: boolean; watch?: number | true }) => {
      try {
        if (o.watch === undefined) {
          const s = await fetchStatus(o.socket);
          process.stdout.write((o.json ? JSON.stringify(s, null, 2) : formatStatus(s)) + '\n');
          return;
        }
        const every = o.watch === true ? 1 : o.watch;
        let prev: StatusSnapshot = await fetchStatus(o.socket);
        for (;;) {
          await sleep(every * 1000);
          const cur = await fetchStatus(o.socket);
          const text = o.json ? JSON.stringify(cur) : formatStatus(cur, computeRates(prev, cur, every));
          process.stdout.write(o.json ? text + '\n' : `\x1b[2J\x1b[H${text}\n`);
          prev = cur;
        }
      } catch (e) {
        process.stderr.write(`flannelctl status: ${(e as Error).message}\n`);
        process.exitCode = 1;
      }
    });
}
