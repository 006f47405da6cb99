// net-conf.json Backend options read the way Go's encoding/json fills flannel's config structs
// (util/go-json.ts: "vni", "VNI", "Vni" all work, the last duplicate wins), wrong types are errors.
import { goField } from '../util/go-json.js';

export function optionField(raw: Readonly<Record<string, unknown>>, name: string): unknown {
  return goField(raw, name);
}

export function optionInt(raw: Readonly<Record<string, unknown>>, name: string, def: number, min: number, max: number, hint = ''): number {
  const v = optionField(raw, name);
  if (v === undefined || v === null) return def;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new Error(`net-conf: Backend.${name} ${JSON.stringify(v)} is invalid: must be a whole number from ${min} to ${max}${hint}`);
  }
  return v;
}

export function optionBool(raw: Readonly<Record<string, unknown>>, name: string, def: boolean): boolean {
  const v = optionField(raw, name);
  if (v === undefined || v === null) return def;
  if (typeof v !== 'boolean') throw new Error(`net-conf: Backend.${name} ${JSON.stringify(v)} is invalid: must be true or false`);
  return v;
}

export function optionString(raw: Readonly<Record<string, unknown>>, name: string): string | undefined {
  const v = optionField(raw, name);
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new Error(`net-conf: Backend.${name} ${JSON.stringify(v)} is invalid: must be a string`);
  return v;
}
