#!/usr/bin/env node
// Compiles the service to plain JavaScript in dist/ (`npm run build`; `npm start` runs it first).
//
// Why: under tsx (`node --import tsx src/main.ts`) the service carries tsx's module loader —
// a second V8 isolate in a worker thread, plus inline source maps for every module — about
// 40 MB of resident memory for nothing at run time. esbuild transpiles file by file (no
// bundling, no type check: `npm run typecheck` does that) in well under a second:
//   src/**/*.ts      → dist/src/**/*.js   (other files under src/, e.g. dashboard assets, copied)
//   migrations/*.ts  → dist/migrations/*.js (recorded under their .ts names: src/db/migrate.ts)
// config/ and package.json stay where they are (src/lib/project-root.ts finds them).
// The new tree is built beside dist/ and swapped in, so a removed source leaves nothing behind.
import { build } from 'esbuild';
import { cpSync, readdirSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DIST = path.join(ROOT, 'dist');

/** Files under `dir` (relative to ROOT), recursively. */
function files(dir) {
  return readdirSync(path.join(ROOT, dir), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.relative(ROOT, path.join(e.parentPath ?? e.path, e.name)));
}

const isTs = (f) => f.endsWith('.ts') && !f.endsWith('.d.ts');
const sources = [...files('src'), ...files('migrations')];
const tmp = `${DIST}.tmp-${process.pid}`;
rmSync(tmp, { recursive: true, force: true });
try {
  await build({
    absWorkingDir: ROOT,
    entryPoints: sources.filter(isTs),
    outdir: tmp,
    outbase: '.',
    format: 'esm',
    platform: 'node',
    target: 'node20',
    logLevel: 'warning',
  });
  for (const f of files('src').filter((f) => !isTs(f))) cpSync(path.join(ROOT, f), path.join(tmp, f));
  const old = `${DIST}.old-${process.pid}`;
  try {
    renameSync(DIST, old);
  } catch (err) {
    if (err.code !== 'ENOENT') throw err;
  }
  renameSync(tmp, DIST);
  rmSync(old, { recursive: true, force: true });
} catch (err) {
  rmSync(tmp, { recursive: true, force: true });
  process.stderr.write(`build: ${err.message}\n`);
  process.exit(1);
}
