// `flannelctl capture`: a pcap of overlay traffic taken inside the data plane (inner packets each way,
// dropped packets with their reason), streamed from the daemon over its status socket.
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import type { Writable } from 'node:stream';
import { Option, type Command } from 'commander';
import { DEFAULT_STATUS_SOCKET } from '../../status.js';
import { DROP_REASONS } from '../../native/engine.js';
import { runCaptureClient } from '../../capture/client.js';
import {
  DEFAULT_SNAPLEN, describeRequest, parseCount, parseDirection, parseDuration, parseFormat, parsePeer, parseReason, parseSnaplen, type CaptureRequest,
} from '../../capture/options.js';
import { onTerminationSignal } from '../../util/signals.js';
import { arg, many } from './args.js';

interface CaptureCliOptions {
  write: string;
  socket: string;
  peer?: string[];
  drops: boolean;
  reason?: string[];
  direction?: 'tx' | 'rx';
  count?: number;
  duration?: number;
  snaplen: number;
  format: 'pcapng' | 'pcap';
}

async function runCaptureCli(o: CaptureCliOptions): Promise<number> {
  const say = (l: string): void => void process.stderr.write(`flannelctl capture: ${l}\n`);
  const toStdout = o.write === '-';
  if (toStdout && process.stdout.isTTY) {
    say('refusing to write pcap to a terminal; give -w FILE, or pipe it: -w - | tcpdump -r -');
    return 2;
  }
  const r: CaptureRequest = {
    peers: o.peer ?? [], drops: o.drops, reasons: o.reason ?? [], direction: o.direction, count: o.count, durationSec: o.duration, snaplen: o.snaplen, format: o.format,
  };
  let out: Writable = process.stdout;
  if (!toStdout) {
    // Opened before the daemon is asked: an unwritable -w FILE is then the only line, never one after
    // "capturing on …" (the open and the daemon's answer used to race), and no capture starts for it.
    const file = createWriteStream(o.write, { mode: 0o600 });
    try {
      await once(file, 'open');
    } catch (e) {
      say(`cannot write the capture: ${(e as Error).message}`);
      return 1;
    }
    out = file;
  }
  const stop = new AbortController();
  onTerminationSignal(() => stop.abort());
  try {
    const res = await runCaptureClient({ socket: o.socket, request: r, out, signal: stop.signal, onStart: (dev) => say(`capturing on ${dev}: ${describeRequest(r)}`) });
    say(res.interrupted ? `stopped; ${res.bytes} bytes written` : `${res.packets ?? '?'} packets captured, ${res.lost ?? '?'} lost to a full capture buffer (${res.end ?? '?'})`);
    return 0;
  } catch (e) {
    say((e as Error).message);
    return 1;
  } finally {
    if (!toStdout) await new Promise<void>((resolve) => out.end(resolve));
  }
}

export function registerCaptureCommand(program: Command): void {
  program
    .command('capture')
    .description('pcap of overlay traffic from inside the data plane (udp backend): packets each way and dropped packets with their reason')
    .option('-w, --write <file>', 'pcap file to write, - for stdout (e.g. -w - | tcpdump -r -)', '-')
    .option('-s, --socket <path>', 'the daemon\'s -status-socket', DEFAULT_STATUS_SOCKET)
    .addOption(new Option('--peer <subnet|ip>', 'only packets of this peer: its subnet or public IP, or any inner address in it (repeatable)').argParser(many(parsePeer)))
    .option('--drops', 'only dropped packets (each with its drop reason)', false)
    .addOption(new Option('--reason <name>', `only drops with this reason (repeatable; implies --drops): ${DROP_REASONS.join(', ')}`).argParser(many((v) => parseReason(v, DROP_REASONS))))
    .addOption(new Option('--direction <dir>', 'only one side: tx (to peers) or rx (from peers)').argParser(arg(parseDirection)))
    .addOption(new Option('-c, --count <n>', 'stop after n packets').argParser(arg(parseCount)))
    .addOption(new Option('--duration <seconds>', 'stop after this many seconds').argParser(arg(parseDuration)))
    .addOption(new Option('--snaplen <bytes>', 'bytes kept per packet').argParser(arg(parseSnaplen)).default(DEFAULT_SNAPLEN))
    .addOption(new Option('--format <format>', 'pcapng (packet comments carry direction, peer, drop reason) or classic pcap').argParser(arg(parseFormat)).default('pcapng'))
    .action(async (o: CaptureCliOptions) => {
      process.exitCode = await runCaptureCli(o);
    });
}
