// Loads the compiled Node-API addon once. Each native concept (engine, netlink socket) has its own
// typed view of the exports in its own module; this file only finds and loads the binary.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: Record<string, unknown> | undefined;

function packageRoot(): string {
  // dist/src/native/addon.js -> package root is three levels up from this directory.
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'binding.gyp'))) return dir;
    dir = dirname(dir);
  }
  throw new Error('flannelts: cannot find the package root (binding.gyp) above ' + fileURLToPath(import.meta.url));
}

/**
 * Loads build/{Release,Debug}/<name>.node: 'flannelts' (the addon) or 'flannelts_testing' (the
 * test-only helpers of native/testing/, never loaded by the daemon).
 */
export function loadNativeModule(name: string): Record<string, unknown> {
  const root = packageRoot();
  const candidates = [join(root, 'build', 'Release', `${name}.node`), join(root, 'build', 'Debug', `${name}.node`)];
  const found = candidates.find((p) => existsSync(p));
  if (!found) {
    throw new Error(`flannelts: native addon not built (looked for ${candidates.join(', ')}); run "npm install" or "npm run build"`);
  }
  const require = createRequire(import.meta.url);
  return require(found) as Record<string, unknown>;
}

export function loadAddon(): Record<string, unknown> {
  cached ??= loadNativeModule('flannelts');
  return cached;
}

/**
 * The addon's exports typed as T, after checking that each named function is there (a stale build
 * then fails with the missing name rather than "is not a function" somewhere later).
 */
export function addonFunctions<T>(names: readonly string[]): T {
  const a = loadAddon();
  for (const k of names) {
    if (typeof a[k] !== 'function') throw new Error(`flannelts: native addon has no ${k} export`);
  }
  return a as unknown as T;
}
