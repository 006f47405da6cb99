// JSON read the way Go's encoding/json decodes it into flannel's structs, for every JSON flannel reads
// (net-conf, Backend options, lease attributes, node annotations), so a file or a peer that stock
// flanneld accepts means the same to us.
//
// Go's decoder walks an object's members in text order and assigns each to the struct field its key
// names: the field whose name equals the key exactly, else the first field (in declaration order) whose
// name equals it under Unicode simple case folding. A later member overwrites an earlier one, so with
// duplicates the LAST one in the text wins, whatever its spelling: {"Port":1,"port":2} gives 2 and
// {"port":2,"Port":1} gives 1. JSON.parse cannot tell that apart: for {"Port":1,"port":2,"Port":3} it
// keeps Port=3 and port=2 with "Port" first in key order, losing that the last member was "Port".
// parseGoJSON therefore re-inserts a repeated key, so an object's key order is the order of the LAST
// occurrence of each key, and "the last matching key in Object.keys order" is Go's answer. (Keys that
// look like array indices are ordered numerically by JavaScript; no struct field has such a name.)
//
// null assigns nothing to a value field (int, bool, string keep what they had) but clears a pointer or
// json.RawMessage field; goFields skips nulls except for the fields the caller says are of that kind.

/** Go's decoder gives up below this nesting ("exceeded max depth"). */
const MAX_DEPTH = 10_000;

export class GoJSONError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GoJSONError';
  }
}

const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;

type Frame = { kind: 'array'; items: unknown[] } | { kind: 'object'; obj: Record<string, unknown>; key: string };

/** Sets obj[key] as the key's last occurrence (moved to the end), as an own property even for "__proto__". */
function setLast(obj: Record<string, unknown>, key: string, value: unknown): void {
  if (Object.prototype.hasOwnProperty.call(obj, key)) delete obj[key];
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

/**
 * Strict RFC 8259 JSON (what JSON.parse accepts) into plain values; objects keep every key once, in the
 * order of its last occurrence. Throws GoJSONError with the offset on malformed input or nesting deeper
 * than Go accepts.
 */
export function parseGoJSON(text: string): unknown {
  let i = 0;
  const n = text.length;
  const fail = (what: string): never => {
    throw new GoJSONError(`${what} at offset ${i}`);
  };
  const skipSpace = (): void => {
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return;
      i++;
    }
  };
  const readString = (): string => {
    const start = i;
    i++; // opening quote
    for (;;) {
      if (i >= n) fail('unterminated string');
      const c = text.charCodeAt(i);
      if (c === 0x22) break;
      if (c < 0x20) fail('control character in string');
      i += c === 0x5c ? 2 : 1;
    }
    i++;
    try {
      // The escapes are JSON's own: let the engine decode (and validate) them.
      return JSON.parse(text.slice(start, i)) as string;
    } catch {
      return fail('invalid escape in string');
    }
  };
  const readKey = (): string => {
    skipSpace();
    if (text[i] !== '"') fail('expected a string key');
    const key = readString();
    skipSpace();
    if (text[i] !== ':') fail('expected ":" after object key');
    i++;
    return key;
  };

  const stack: Frame[] = [];
  for (;;) {
    skipSpace();
    let value: unknown;
    const c = text[i];
    if (c === '{' || c === '[') {
      if (stack.length + 1 > MAX_DEPTH) fail('exceeded max depth');
      i++;
      skipSpace();
      if (c === '{' && text[i] === '}') {
        i++;
        value = {};
      } else if (c === '[' && text[i] === ']') {
        i++;
        value = [];
      } else {
        stack.push(c === '{' ? { kind: 'object', obj: {}, key: readKey() } : { kind: 'array', items: [] });
        continue;
      }
    } else if (c === '"') {
      value = readString();
    } else if (c === 't' && text.startsWith('true', i)) {
      i += 4;
      value = true;
    } else if (c === 'f' && text.startsWith('false', i)) {
      i += 5;
      value = false;
    } else if (c === 'n' && text.startsWith('null', i)) {
      i += 4;
      value = null;
    } else {
      NUMBER.lastIndex = i;
      const m = NUMBER.exec(text);
      if (!m) return fail(i >= n ? 'unexpected end of JSON input' : `invalid character ${JSON.stringify(text[i])}`);
      i += m[0].length;
      value = Number(m[0]);
    }
    // Hand the finished value to its container; close every container that ends here.
    for (;;) {
      const top = stack[stack.length - 1];
      if (!top) {
        skipSpace();
        if (i !== n) fail('invalid character after top-level value');
        return value;
      }
      if (top.kind === 'array') top.items.push(value);
      else setLast(top.obj, top.key, value);
      skipSpace();
      const sep = text[i];
      if (sep === ',') {
        i++;
        if (top.kind === 'object') top.key = readKey();
        break;
      }
      if ((top.kind === 'array' && sep === ']') || (top.kind === 'object' && sep === '}')) {
        i++;
        stack.pop();
        value = top.kind === 'array' ? top.items : top.obj;
        continue;
      }
      fail(top.kind === 'array' ? 'expected "," or "]"' : 'expected "," or "}"');
    }
  }
}

/**
 * Go's foldName for the comparison with (ASCII) field names: ASCII letters upper-cased, and the two
 * non-ASCII runes whose simple case-fold orbit holds an ASCII letter mapped onto it: KELVIN SIGN (U+212A,
 * with K and k) and LATIN SMALL LETTER LONG S (U+017F, with S and s).
 */
export function foldName(name: string): string {
  // Not toUpperCase: it also maps e.g. U+0131 (dotless i) to I and ß to SS, which Go does not fold.
  return name.replace(/[a-z]/g, (c) => c.toUpperCase()).replace(/\u212a/g, 'K').replace(/\u017f/g, 'S');
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The struct field a JSON key decodes into: exact name first, else the first field that folds equal. */
function fieldFor<F extends string>(key: string, fields: readonly F[], folded: readonly string[]): F | undefined {
  const exact = fields.find((f) => f === key);
  if (exact !== undefined) return exact;
  const k = foldName(key);
  const at = folded.indexOf(k);
  return at < 0 ? undefined : fields[at];
}

/**
 * Decodes an object into the named fields as Go does (see the top of this file): unknown keys are
 * ignored, the last member for a field wins, null leaves a value field as it was and clears one listed
 * in `nullable` (pointers, json.RawMessage). Absent fields are not in the map.
 */
export function goFields<F extends string>(obj: Readonly<Record<string, unknown>>, fields: readonly F[], nullable: readonly F[] = []): Map<F, unknown> {
  const folded = fields.map(foldName);
  const out = new Map<F, unknown>();
  for (const key of Object.keys(obj)) {
    const field = fieldFor(key, fields, folded);
    if (field === undefined) continue;
    const value = obj[key];
    if (value === null) {
      if (nullable.includes(field)) out.delete(field);
      continue;
    }
    out.set(field, value);
  }
  return out;
}

/** One field of a struct whose field names do not fold onto each other (true of every flannel struct we read). */
export function goField(obj: Readonly<Record<string, unknown>>, name: string): unknown {
  return goFields(obj, [name]).get(name);
}
