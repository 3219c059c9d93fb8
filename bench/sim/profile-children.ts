import fs from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../../test/helpers/daemon.js';

/**
 * SHOAL_BENCH_PROFILE=<dir>: every node process started from now on (shoald through the test
 * helpers, the simulated nodes) preloads cpu-profile.ts and writes its CPU profile into <dir>.
 * Nothing without the variable.
 */
export function profileChildrenIfAsked(): void {
  const prof = process.env.SHOAL_BENCH_PROFILE;
  if (!prof) return;
  fs.mkdirSync(prof, { recursive: true });
  process.env.SHOAL_BENCH_PROFILE = path.resolve(prof);
  process.env.NODE_OPTIONS =
    `${process.env.NODE_OPTIONS ?? ''} --import=${path.join(REPO_ROOT, 'dist/bench/sim/cpu-profile.js')}`.trim();
}
