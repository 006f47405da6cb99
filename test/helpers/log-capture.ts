// Collects the daemon's log lines during a test; restore() puts the previous sink back.
import { setLogSink } from '../../src/log.js';

export function captureLog(): { lines: string[]; restore: () => void } {
  const lines: string[] = [];
  const prev = setLogSink((l) => lines.push(l));
  return { lines, restore: () => setLogSink(prev) };
}
