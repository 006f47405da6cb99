#!/usr/bin/env node
// flannelctl: run, debug and benchmark Flannel backends. `lab` is the main job; each command is a file
// in commands/.
import { Command } from 'commander';
import { VERSION } from '../version.js';
import { registerBenchCommand } from './commands/bench.js';
import { registerCaptureCommand } from './commands/capture.js';
import { registerLabCommand } from './commands/lab.js';
import { registerStatusCommand } from './commands/status.js';

const program = new Command();
// Positional options: `lab exec n1 ping -c 1 ...` hands everything after the node to the command.
program.name('flannelctl').description('Run, debug and benchmark Flannel backends').version(VERSION).enablePositionalOptions();
registerLabCommand(program);
registerStatusCommand(program);
registerCaptureCommand(program);
registerBenchCommand(program);

await program.parseAsync(process.argv);
