#!/usr/bin/env node
// install-conf SRC DEST: flannel's /opt/bin/install-conf (cmd/install_conf, v0.28.6+), run by the
// manifest's install-cni init container to put the CNI conflist in place atomically (./atomic-install.ts).
// Exactly two arguments, else the usage line and exit 1; any failure is one line naming the source,
// exit 1, and the target as it was.
import { installFileAtomic } from './atomic-install.js';

function main(args: string[]): number {
  if (args.length !== 2) {
    process.stderr.write('usage: install-conf <src> <dest>\n');
    return 1;
  }
  const [src, dest] = args as [string, string];
  try {
    installFileAtomic(src, dest);
  } catch (e) {
    process.stderr.write(`install-conf: error installing "${src}": ${(e as Error).message}\n`);
    return 1;
  }
  return 0;
}

process.exitCode = main(process.argv.slice(2));
