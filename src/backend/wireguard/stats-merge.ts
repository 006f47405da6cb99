// One report from the engines of several WireGuard devices (separate mode runs one per family):
// totals, drops, offload counters and the protocol's counters summed, the peers listed side by side.
import type { EngineStats } from '../../native/engine.js';

function sum<T extends object>(items: T[]): T {
  const out = { ...items[0]! } as Record<string, unknown>;
  for (const it of items.slice(1)) {
    for (const [k, v] of Object.entries(it)) if (typeof v === 'number' && typeof out[k] === 'number') out[k] = (out[k] as number) + v;
  }
  return out as T;
}

export function sumCounters<T extends Record<string, number>>(all: T[]): T {
  return sum(all);
}

/** The first engine's settings (offloads, reply polling, threads), every counter summed. */
export function mergeEngineStats(all: EngineStats[]): EngineStats {
  const [first, ...rest] = all;
  if (!first || rest.length === 0) return first!;
  return {
    ...first,
    tx: sum(all.map((s) => s.tx)),
    rx: sum(all.map((s) => s.rx)),
    drops: sum(all.map((s) => s.drops)),
    arpReplies: 0,
    offload: sum(all.map((s) => s.offload)),
    offloadNotes: [...new Set(all.map((s) => s.offloadNotes).filter(Boolean))].join(''),
    peers: all.flatMap((s) => s.peers),
    capture: { active: all.some((s) => s.capture.active), lost: all.reduce((n, s) => n + s.capture.lost, 0) },
  };
}
