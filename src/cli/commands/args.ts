// Argument parsing and checks shared by flannelctl's commands.
import { InvalidArgumentError } from 'commander';

export function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a whole number >= 1');
  return n;
}

export function nonNegativeInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('must be a whole number >= 0');
  return n;
}

export function requireRoot(what: string): void {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    process.stderr.write(`flannelctl ${what}: needs root (network namespaces and TUN devices); run it with sudo\n`);
    process.exit(1);
  }
}

/** A capture option validator as a commander argument parser (its message becomes commander's one-line error). */
export function arg<T>(parse: (v: string) => T): (v: string) => T {
  return (v) => {
    try {
      return parse(v);
    } catch (e) {
      throw new InvalidArgumentError((e as Error).message);
    }
  };
}
export const many = <T>(parse: (v: string) => T) => (v: string, prev: T[] = []): T[] => [...prev, arg(parse)(v)];
