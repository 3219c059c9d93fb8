#!/usr/bin/env node
// Runs the compiled tests with node's built-in runner and prints its pass/fail summary.
// Usage: node scripts/run-tests.js [unit|integration|cluster ...]  (default: all, in that order)
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const suites = process.argv.slice(2).length ? process.argv.slice(2) : ['unit', 'integration', 'cluster'];
const files = [];
for (const s of suites) {
  const dir = path.join(root, 'dist/test', s);
  if (!fs.existsSync(dir)) continue;
  // Unit tests mirror the source tree (unit/manager/control/...): every folder below the suite's.
  const found = fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.test.js'));
  for (const f of found.sort()) files.push(path.join(dir, f));
}
if (files.length === 0) {
  console.error(`no test files in ${suites.join(', ')}`);
  process.exit(1);
}
if (process.getuid?.() !== 0 && suites.some((s) => s !== 'unit')) {
  console.error('integration and cluster tests need root (they create namespaces, run runc and shoald)');
  process.exit(1);
}
// Root tests share one machine: run files one at a time.
const r = spawnSync(
  process.execPath,
  ['--enable-source-maps', '--test', '--test-concurrency=1', '--test-reporter=spec', ...files],
  { stdio: 'inherit' },
);
process.exit(r.status ?? 1);
