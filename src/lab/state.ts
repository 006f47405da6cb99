// Labs kept running (`flannelctl lab --keep`): a state file per lab under /run/flannelts-lab naming its
// processes and namespaces, so `flannelctl lab down` can end them by PID and remove them later.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { killAndWait } from '../util/process.js';
import { NetnsSet } from './netns.js';

export const LAB_STATE_DIR = '/run/flannelts-lab';

export interface LabState {
  prefix: string;
  dir: string;
  pids: number[];
  namespaces: readonly string[];
  /** The nodes (absent in state files of older versions): names, namespaces, daemon PID. */
  nodes?: LabStateNode[];
}

export interface LabStateNode {
  name: string;
  netns: string;
  pod: string;
  pid?: number;
}

/** The kept labs' states (all, or the one with `prefix`). */
export function keptLabs(prefix?: string): LabState[] {
  if (!existsSync(LAB_STATE_DIR)) return [];
  return readdirSync(LAB_STATE_DIR)
    .filter((f) => f.endsWith('.json') && (!prefix || f === `${prefix}.json`))
    .map((f) => JSON.parse(readFileSync(join(LAB_STATE_DIR, f), 'utf8')) as LabState);
}

export function labStateFile(prefix: string): string {
  return join(LAB_STATE_DIR, `${prefix}.json`);
}

export function saveLabState(state: LabState): string {
  mkdirSync(LAB_STATE_DIR, { recursive: true });
  const file = labStateFile(state.prefix);
  writeFileSync(file, JSON.stringify(state, null, 2));
  return file;
}

/** Removes every lab started with --keep (or only `prefix`): kills its processes by PID, deletes namespaces. */
export async function labDown(prefix?: string): Promise<string[]> {
  const removed: string[] = [];
  if (!existsSync(LAB_STATE_DIR)) return removed;
  for (const f of readdirSync(LAB_STATE_DIR)) {
    if (!f.endsWith('.json') || (prefix && f !== `${prefix}.json`)) continue;
    const path = join(LAB_STATE_DIR, f);
    const state = JSON.parse(readFileSync(path, 'utf8')) as LabState;
    await killAndWait(state.pids, { graceMs: 2500 });
    removed.push(...NetnsSet.removeByPrefix(state.prefix));
    rmSync(state.dir, { recursive: true, force: true });
    rmSync(path, { force: true });
  }
  return removed;
}
