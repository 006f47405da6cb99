// The Node.js/V8 flags flanneld runs with. One list, used in two places that must agree: the shebang of
// src/cli/flanneld.ts (how `flanneld` runs when started as a program, e.g. the npm bin link) and the lab,
// which spawns `node <flags> flanneld.js` (test/unit/flanneld-cli.test.ts checks the two match).
//
// --max-semi-space-size=1: cap each V8 young-generation semi-space at 1 MiB (default up to 16 MiB).
// The daemon's live heap is ~7 MiB at 1,000 peers, but the default young generation commits 8 MiB at
// start and grows to 16 MiB under the lease store's periodic work, which dominated its RSS. The cost is
// more frequent (sub-millisecond) scavenges of a small heap; the data plane is native and never waits on
// the JavaScript heap.
//
// --no-opt: no TurboFan. JavaScript here is the control plane only (lease store, netlink, table pushes);
// packets never run JavaScript. The first function TurboFan optimizes pages in ~4 MiB of the compiler's
// machine code from the node binary and adds its optimized code and zones to the heap: 55.5 vs 61 MiB
// at 1,000 peers. Cost, measured in the lab: idle CPU unchanged (0.9% of a core at 1,000 peers); under
// 100 lease events/s (bench steady-leases) ~4% of a core more per daemon (4.1 vs 3.0 CPU-s over the
// 20 s run and start-up); lease-event convergence unchanged (~0.3 s after the last event).
export const FLANNELD_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=1', '--no-opt'];

/** The shebang line flanneld.ts must start with for FLANNELD_NODE_FLAGS. */
export const flanneldShebang = (): string => `#!/usr/bin/env -S node ${FLANNELD_NODE_FLAGS.join(' ')}`;
