#!/usr/bin/env node
// Folder-level import cycles in src/ (part of `npm run lint`).
//
// dependency-cruiser's `no-circular` sees modules (files); two folders can still depend on
// each other through different files. Here every folder src/<name>/ is one node and every
// file directly in src/ (main.ts, app.ts, …) is its own node; an import between two nodes
// is an edge (type-only imports included), and any cycle in that graph fails the lint.
// Protects: modules form layers, so each can be understood, tested and moved on its own.
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { cruise } from 'dependency-cruiser';
import extractDepcruiseOptions from 'dependency-cruiser/config-utl/extract-depcruise-options';
import extractTSConfig from 'dependency-cruiser/config-utl/extract-ts-config';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Cruises `paths` (relative to `baseDir`) with the repository's .dependency-cruiser.cjs.
 * Returns dependency-cruiser's result object (modules and rule violations).
 */
export async function cruiseBoundaries(paths, { baseDir = ROOT } = {}) {
  const options = await extractDepcruiseOptions(path.join(ROOT, '.dependency-cruiser.cjs'));
  const tsConfigFile = path.join(ROOT, 'tsconfig.json');
  const tsConfig = extractTSConfig(tsConfigFile);
  const { output } = await cruise(paths, { ...options, tsConfig: { fileName: tsConfigFile }, baseDir, outputType: 'json' }, {}, { tsConfig });
  return typeof output === 'string' ? JSON.parse(output) : output;
}

/** The node a module belongs to: `src/<folder>` or the file itself when it sits in src/. */
export const folderOf = (source) => {
  const m = /^src\/([^/]+)\//.exec(source);
  if (m) return `src/${m[1]}`;
  return /^src\/[^/]+$/.test(source) ? source : null;
};

/**
 * Cycles of the folder graph: each strongly connected component with more than one node,
 * with the file imports that make its edges.
 */
export function folderCycles(modules) {
  const edges = new Map(); // folder -> Map(folder -> [ 'file → file', … ])
  for (const m of modules) {
    const from = folderOf(m.source);
    if (!from) continue;
    for (const d of m.dependencies ?? []) {
      const to = folderOf(d.resolved);
      if (!to || to === from) continue;
      if (!edges.has(from)) edges.set(from, new Map());
      const out = edges.get(from);
      if (!out.has(to)) out.set(to, []);
      out.get(to).push(`${m.source} → ${d.resolved}`);
    }
  }
  // Tarjan's strongly connected components
  const nodes = new Set([...edges.keys(), ...[...edges.values()].flatMap((o) => [...o.keys()])]);
  const index = new Map(), low = new Map(), onStack = new Set(), stack = [], sccs = [];
  let next = 0;
  const visit = (v) => {
    index.set(v, next); low.set(v, next); next++;
    stack.push(v); onStack.add(v);
    for (const w of edges.get(v)?.keys() ?? []) {
      if (!index.has(w)) { visit(w); low.set(v, Math.min(low.get(v), low.get(w))); }
      else if (onStack.has(w)) low.set(v, Math.min(low.get(v), index.get(w)));
    }
    if (low.get(v) === index.get(v)) {
      const scc = [];
      let w;
      do { w = stack.pop(); onStack.delete(w); scc.push(w); } while (w !== v);
      if (scc.length > 1) sccs.push(scc.sort());
    }
  };
  for (const v of [...nodes].sort()) if (!index.has(v)) visit(v);
  return sccs.map((folders) => ({
    folders,
    imports: folders.flatMap((f) =>
      [...(edges.get(f) ?? new Map())].filter(([to]) => folders.includes(to)).flatMap(([, files]) => [...new Set(files)])),
  }));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const result = await cruiseBoundaries(['src']);
  const cycles = folderCycles(result.modules);
  if (cycles.length === 0) {
    console.log(`✔ no folder cycles in src/ (${new Set(result.modules.map((m) => folderOf(m.source)).filter(Boolean)).size} nodes)`);
  } else {
    for (const c of cycles) {
      console.error(`  error folder-cycle: {${c.folders.join(', ')}}`);
      for (const i of c.imports) console.error(`      ${i}`);
    }
    console.error(`\n✘ ${cycles.length} folder cycle(s) in src/`);
    process.exitCode = 1;
  }
}
