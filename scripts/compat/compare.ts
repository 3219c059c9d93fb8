/** Results of a compat run per suite file, the command line, and the shoal/dockerd comparison. */
import path from 'node:path';
import { SUITE_FILES } from './lists.js';
import type { CaseResult } from './junit.js';

export interface FileResult {
  file: string;
  cases: CaseResult[];
  deselected: number;
  seconds: number;
}

export type DaemonKind = 'shoal' | 'dockerd';

export interface Args {
  daemons: DaemonKind[];
  files: string[];
  shoalResults?: string;
  dockerdResults?: string;
}

/** `[--daemon shoal|dockerd|both] [--shoal-results DIR] [--dockerd-results DIR] FILE...` */
export function parseArgs(argv: string[]): Args {
  let daemons: DaemonKind[] = ['shoal'];
  let shoalResults: string | undefined;
  let dockerdResults: string | undefined;
  const files: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--daemon') {
      const v = argv[++i];
      if (v === 'shoal' || v === 'dockerd') daemons = [v];
      else if (v === 'both') daemons = ['shoal', 'dockerd'];
      else throw new Error(`--daemon ${v}: one of shoal, dockerd, both`);
    } else if (a === '--shoal-results') {
      shoalResults = path.resolve(argv[++i] ?? '');
    } else if (a === '--dockerd-results') {
      dockerdResults = path.resolve(argv[++i] ?? '');
    } else if (!(SUITE_FILES as readonly string[]).includes(a)) {
      throw new Error(`unknown suite file ${a}; one of: ${SUITE_FILES.join(' ')}`);
    } else files.push(a);
  }
  // A daemon whose results are given is not run again.
  daemons = daemons.filter((d) => !(d === 'shoal' ? shoalResults : dockerdResults));
  return { daemons, files: files.length ? files : [...SUITE_FILES], shoalResults, dockerdResults };
}

export function count(cases: CaseResult[], outcome: CaseResult['outcome']): number {
  return cases.filter((c) => c.outcome === outcome).length;
}

/** Tests that pass on dockerd but not on shoal (failed, skipped, or missing from shoal's run). */
export function dockerdOnly(shoal: FileResult[], dockerd: FileResult[]): { id: string; shoal: string }[] {
  const onShoal = new Map(shoal.flatMap((r) => r.cases.map((c) => [c.id, c] as const)));
  return dockerd.flatMap((r) =>
    r.cases
      .filter((c) => c.outcome === 'passed' && onShoal.get(c.id)?.outcome !== 'passed')
      .map((c) => {
        const s = onShoal.get(c.id);
        return { id: c.id, shoal: s ? `${s.outcome}: ${s.message}` : 'not run on shoal' };
      }),
  );
}
