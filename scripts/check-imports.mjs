#!/usr/bin/env node
// Checks src/'s imports against the folder layer order in DESIGN.md §8
// (cli → api → node → manager | agent → engine → cluster | net → util) and reports
// import cycles between files. Exits 1 on any violation or cycle.
// Usage: node scripts/check-imports.mjs [srcDir]
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';

const root = resolve(process.argv[2] ?? 'src');

// Which top folders each top folder may import (besides itself). Anything not listed is a
// violation. `lab` is the test lab: it may use the engine's helpers and the shared leaves.
const allowed = {
  cli: ['api', 'node', 'manager', 'agent', 'engine', 'cluster', 'net', 'util', 'lab'],
  api: ['node', 'manager', 'agent', 'engine', 'cluster', 'net', 'util'],
  node: ['manager', 'agent', 'engine', 'cluster', 'net', 'util'],
  manager: ['cluster', 'net', 'util'],
  agent: ['engine', 'cluster', 'net', 'util'],
  engine: ['cluster', 'net', 'util'],
  cluster: ['net', 'util'],
  net: ['util'],
  util: [],
  lab: ['engine', 'cluster', 'net', 'util'],
};

/** Every .ts file under dir (declaration files excluded). */
function tsFiles(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...tsFiles(path));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

// Static imports and re-exports, including `import type` (a type-only cycle still couples the
// files) and dynamic `import('...')` with a literal path.
const importRe =
  /(?:^|[\s;])(?:import|export)\s[^'";]*?from\s*['"]([^'"]+)['"]|(?:^|[\s;])import\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/gm;

function importsOf(file) {
  const text = readFileSync(file, 'utf8')
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/^\s*\/\/.*$/gm, '');
  const deps = [];
  for (const m of text.matchAll(importRe)) {
    const spec = m[1] ?? m[2] ?? m[3];
    if (!spec.startsWith('.')) continue;
    deps.push(resolve(dirname(file), spec.replace(/\.js$/, '.ts')));
  }
  return deps;
}

const topOf = (file) => relative(root, file).split(sep)[0];
const rel = (file) => relative(process.cwd(), file);

const files = tsFiles(root);
const graph = new Map(files.map((f) => [f, importsOf(f).filter((d) => files.includes(d))]));

const violations = [];
for (const [file, deps] of graph) {
  const from = topOf(file);
  for (const dep of deps) {
    const to = topOf(dep);
    if (to === from) continue;
    if (!(allowed[from] ?? []).includes(to))
      violations.push(`${rel(file)} → ${rel(dep)} (${from} may not import ${to})`);
  }
}

/** One shortest import cycle through the component's first file (BFS), to show what to cut. */
function shortestCycle(scc) {
  const inScc = new Set(scc);
  const start = [...scc].sort()[0];
  const prev = new Map([[start, undefined]]);
  const queue = [start];
  while (queue.length > 0) {
    const v = queue.shift();
    for (const w of graph.get(v)) {
      if (!inScc.has(w)) continue;
      if (w === start) {
        const path = [v];
        while (prev.get(path[0]) !== undefined) path.unshift(prev.get(path[0]));
        return { path: [...path, start].map(rel), size: scc.length };
      }
      if (!prev.has(w)) {
        prev.set(w, v);
        queue.push(w);
      }
    }
  }
  return { path: [rel(start), rel(start)], size: scc.length };
}

// Cycles: strongly connected components (Tarjan) with more than one file, or a self-import.
const cycles = [];
{
  let index = 0;
  const idx = new Map();
  const low = new Map();
  const stack = [];
  const onStack = new Set();
  const visit = (v) => {
    // Iterative DFS so deep graphs cannot overflow the call stack.
    const work = [[v, 0]];
    idx.set(v, index);
    low.set(v, index);
    index++;
    stack.push(v);
    onStack.add(v);
    while (work.length > 0) {
      const frame = work[work.length - 1];
      const [node, i] = frame;
      const deps = graph.get(node);
      if (i < deps.length) {
        frame[1]++;
        const w = deps[i];
        if (!idx.has(w)) {
          idx.set(w, index);
          low.set(w, index);
          index++;
          stack.push(w);
          onStack.add(w);
          work.push([w, 0]);
        } else if (onStack.has(w)) low.set(node, Math.min(low.get(node), idx.get(w)));
        continue;
      }
      work.pop();
      if (work.length > 0) {
        const parent = work[work.length - 1][0];
        low.set(parent, Math.min(low.get(parent), low.get(node)));
      }
      if (low.get(node) === idx.get(node)) {
        const scc = [];
        let w;
        do {
          w = stack.pop();
          onStack.delete(w);
          scc.push(w);
        } while (w !== node);
        if (scc.length > 1 || graph.get(node).includes(node)) cycles.push(shortestCycle(scc));
      }
    }
  };
  for (const f of files) if (!idx.has(f)) visit(f);
}

for (const v of violations) console.log(`layer: ${v}`);
for (const c of cycles)
  console.log(
    `cycle: ${c.path.join(' → ')}${c.size > c.path.length - 1 ? ` (one of the cycles among ${c.size} files)` : ''}`,
  );
console.log(`check-imports: ${files.length} files, ${violations.length} layer violation(s), ${cycles.length} cycle(s)`);
process.exit(violations.length + cycles.length > 0 ? 1 : 0);
