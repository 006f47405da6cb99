// Captures the daemon's log lines for a test; restore() puts the previous sink back.
import { setLogSink } from '../../src/log.js';

export function captureLogs(): { lines: string[]; restore: () => void } {
  const lines: string[] = [];
  const prev = setLogSink((l) => lines.push(l));
  return { lines, restore: () => setLogSink(prev) };
}
