// Regular-expression work on hostile input as a count, not a time: a wall-clock limit per decode fails
// on a loaded machine, while the number of backtracks a regex needs for an input is the same on any
// machine. The recorder logs every regex execution a decoder makes; the replay re-runs them in a child
// Node whose V8 leaves an execution for its linear-time engine once it passes BACKTRACK_LIMIT
// backtracks, and traces each such fallback: a catastrophic (exponential or polynomial) regex shows as
// a fallback. A regex the linear-time engine cannot run (backreferences, lookarounds, the i or u flag,
// large counted repeats) is reported instead of executed, since its work could not be bounded.
//
// Importing this module also turns the fallback on in this process (untraced), so that such a regex
// makes the test fail by count instead of hanging it. V8 reads these flags when it compiles a regex:
// import this module before the code under test.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';

/**
 * Backtracks allowed for one regex execution on one input. The decoders' regexes need fewer than 50 on
 * every hostile input (the longest are ~11,000 characters); a quadratic regex on one of the
 * 5,000-character strings needs millions, an exponential one on 30 characters a billion.
 */
export const BACKTRACK_LIMIT = 200_000;

const v8Flags = ['--enable-experimental-regexp-engine-on-excessive-backtracks', `--regexp-backtracks-before-fallback=${BACKTRACK_LIMIT}`];
for (const flag of v8Flags) setFlagsFromString(flag);

const replayScript = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'regex-replay.js');

/** One regex with the inputs it ran on, each with the lastIndex values it started from. */
export interface RegexRuns {
  source: string;
  flags: string;
  inputs: Array<[input: string, lastIndexes: number[]]>;
}

export class RegexRecorder {
  private readonly byRegex = new Map<string, { source: string; flags: string; inputs: Map<string, Set<number>> }>();

  /** Runs `fn`, logging every RegExp execution in it (test, match, replace and split all go through exec). */
  during<T>(fn: () => T): T {
    const proto = RegExp.prototype;
    const exec = proto.exec;
    const byRegex = this.byRegex;
    proto.exec = function (this: RegExp, input: string): RegExpExecArray | null {
      const key = `${this.flags}/${this.source}`;
      let entry = byRegex.get(key);
      if (!entry) byRegex.set(key, (entry = { source: this.source, flags: this.flags, inputs: new Map() }));
      const text = String(input);
      let starts = entry.inputs.get(text);
      if (!starts) entry.inputs.set(text, (starts = new Set()));
      starts.add(this.lastIndex);
      return exec.call(this, input);
    };
    try {
      return fn();
    } finally {
      proto.exec = exec;
    }
  }

  runs(): RegexRuns[] {
    return [...this.byRegex.values()].map((r) => ({ source: r.source, flags: r.flags, inputs: [...r.inputs].map(([text, starts]) => [text, [...starts]]) }));
  }
}

export interface RegexWork {
  executions: number;
  /** `/source/flags`, with the start of the input, for each execution that needed more than BACKTRACK_LIMIT backtracks. */
  excessive: string[];
  /** Regexes whose work cannot be bounded this way, with V8's reason. */
  unbounded: string[];
}

/** Replays `runs` in a child Node that counts backtracks up to BACKTRACK_LIMIT; see the file comment. */
export function replayWithBacktrackLimit(runs: RegexRuns[]): RegexWork {
  const child = spawnSync(
    process.execPath,
    ['--enable-experimental-regexp-engine', ...v8Flags, '--trace-experimental-regexp-engine', replayScript],
    { input: JSON.stringify(runs), encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 },
  );
  if (child.status !== 0) throw new Error(`regex replay failed (${child.status ?? child.signal}): ${child.stderr}`);
  const work: RegexWork = { executions: 0, excessive: [], unbounded: [] };
  let current = '';
  let canaryCaught = false;
  for (const line of child.stdout.split('\n')) {
    if (line === 'canary') {
      current = 'canary';
    } else if (line.startsWith('exec ')) {
      const [ri, ii] = line.slice(5).split(' ').map(Number) as [number, number];
      const r = runs[ri]!;
      current = `/${r.source}/${r.flags} on ${JSON.stringify(r.inputs[ii]![0].slice(0, 80))}`;
    } else if (line.startsWith('Experimental execution')) {
      // V8 traces a fallback right after the marker of the execution that caused it.
      if (current === 'canary') canaryCaught = true;
      else work.excessive.push(current);
    } else if (line.startsWith('unbounded ')) {
      const [ri, ...why] = line.slice(10).split(' ');
      const r = runs[Number(ri)]!;
      work.unbounded.push(`/${r.source}/${r.flags}: ${why.join(' ')}`);
    } else if (line.startsWith('done ')) {
      work.executions = Number(line.slice(5));
    }
  }
  if (!canaryCaught) throw new Error(`regex replay: this Node's V8 (${process.versions.v8}) did not trace the canary's fallback; the backtrack bound cannot be checked`);
  return work;
}
