#!/usr/bin/env node
// npm's install step: builds the native addon with node-gyp unless the built addon is current — made by
// this Node's ABI and no newer than binding.gyp and every file under native/. `npx flannelctl` installs
// the project into npm's cache as a link to this directory and runs this step again; a full rebuild there
// cost ~50 s before every first lab. `--force` (npm run build) always rebuilds.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const release = join(root, 'build', 'Release');
const stampFile = join(release, '.build-stamp.json');
const stamp = { abi: process.versions.modules, node: process.version, arch: process.arch };

function newestSource() {
  let newest = statSync(join(root, 'binding.gyp')).mtimeMs;
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else newest = Math.max(newest, statSync(p).mtimeMs);
    }
  };
  walk(join(root, 'native'));
  return newest;
}

function current() {
  if (!existsSync(stampFile)) return false;
  let old;
  try {
    old = JSON.parse(readFileSync(stampFile, 'utf8'));
  } catch {
    return false;
  }
  if (old.abi !== stamp.abi || old.arch !== stamp.arch) return false;
  const built = readdirSync(release).filter((f) => f.endsWith('.node'));
  if (built.length === 0) return false;
  const oldest = Math.min(...built.map((f) => statSync(join(release, f)).mtimeMs));
  return oldest >= newestSource();
}

if (!process.argv.includes('--force') && current()) {
  process.stdout.write(`native addon is current for node ${process.version} (build/Release); not rebuilt\n`);
  process.exit(0);
}
// npm puts its bundled node-gyp on PATH for lifecycle scripts; npm_config_node_gyp names it too.
const gyp = process.env.npm_config_node_gyp;
const r = gyp ? spawnSync(process.execPath, [gyp, 'rebuild'], { stdio: 'inherit' }) : spawnSync('node-gyp', ['rebuild'], { stdio: 'inherit' });
if (r.error) {
  process.stderr.write(`build-addon: cannot run node-gyp (${r.error.message}); run it through npm (npm install, npm run build)\n`);
  process.exit(1);
}
if (r.status !== 0) process.exit(r.status ?? 1);
writeFileSync(stampFile, JSON.stringify(stamp) + '\n');
