/**
 * `npm run bench [-- [--full] [scenario …]]`: runs benchmark scenarios one after another, each
 * in its own process (each is also runnable alone: `node dist/bench/<file>.js`), prints their
 * output and a summary table, and writes bench/results/run-<time>.json with every scenario's
 * output and, where the scenario writes one, its own JSON report. Root; not part of `npm test`.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../test/helpers/daemon.js';
import { writeReport } from './report.js';

/** A scenario runs dist/bench/<its name>.js with these arguments. */
interface Scenario {
  what: string;
  quick: string[];
  /** The arguments under --full; the quick ones where absent. */
  full?: string[];
}

const SCENARIOS: Record<string, Scenario> = {
  'control-plane': {
    what: '1 real manager + simulated nodes over mTLS: create → all RUNNING',
    quick: ['100', '10000', '300'],
    full: ['1000', '100000', '900'],
  },
  'vs-docker': {
    what: '50 real micro replicas: shoal vs dockerd 20.10, create and scale to 0',
    quick: ['50'],
  },
  'runtime-floor': {
    what: 'the runtime alone (conmon+runc, runc): 50 micro containers, no daemon',
    quick: ['50', '50'],
  },
  'control-plane-memory': {
    what: 'leader loops + workers on the in-memory store (no etcd, no RPC)',
    quick: ['10000', '1000'],
    full: ['100000', '1000'],
  },
  'api-decode': {
    what: 'request body decoding (Docker schema, Go semantics) vs JSON.parse',
    quick: ['5000'],
    full: ['50000'],
  },
  scheduler: {
    what: 'pure scheduling pass',
    quick: ['100000', '1000'],
  },
  'container-start': { what: 'docker run -d latency on one shoald', quick: [] },
  mesh: { what: 'routing mesh vs direct, wrk', quick: ['5'], full: ['10'] },
  'mesh-ready': {
    what: '3-machine lab, docker CLI: task RUNNING → its published port answers on every machine, p50/max',
    quick: ['20'],
  },
  'mesh-swarm': {
    what: '3-machine lab, docker CLI: published port vs task container, wrk req/s and p50/p99',
    quick: ['5'],
    full: ['10'],
  },
  'encrypted-overlay': {
    what: '2-machine lab: encrypted overlay (WireGuard) vs plain overlay, wrk req/s + p99 and one TCP stream MB/s',
    quick: ['5', '128'],
    full: ['10', '512'],
  },
  'image-sharing': {
    what: 'N-machine lab: a global service of a big random image, from the lab registry vs from peers',
    quick: ['3', '50'],
    full: ['5', '200'],
  },
  failover: {
    what: '3 managers: leader kill → first accepted write; 3-machine lab: worker gone → Down → replicas elsewhere',
    quick: ['3'],
    full: ['5'],
  },
};

const args = process.argv.slice(2);
const full = args.includes('--full');
const chosen = args.filter((a) => !a.startsWith('--'));
for (const c of chosen)
  if (!SCENARIOS[c]) throw new Error(`unknown scenario ${c}; known: ${Object.keys(SCENARIOS).join(', ')}`);
const names = chosen.length ? chosen : Object.keys(SCENARIOS);

interface Outcome {
  scenario: string;
  args: string[];
  code: number | null;
  seconds: number;
  report?: unknown;
  output: string;
}
const outcomes: Outcome[] = [];
for (const name of names) {
  const s = SCENARIOS[name];
  const a = full ? (s.full ?? s.quick) : s.quick;
  console.log(`\n=== ${name} ${a.join(' ')}: ${s.what}`);
  const t0 = Date.now();
  const child = spawn(process.execPath, [path.join(REPO_ROOT, 'dist/bench', `${name}.js`), ...a], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let output = '';
  child.stdout.on('data', (b: Buffer) => {
    output += b.toString();
    process.stdout.write(b);
  });
  const code = await new Promise<number | null>((r) => child.on('close', r));
  const written = /written (bench\/results\/\S+\.json)/.exec(output)?.[1];
  const report = written ? JSON.parse(fs.readFileSync(path.join(REPO_ROOT, written), 'utf8')) : undefined;
  outcomes.push({ scenario: name, args: a, code, seconds: Math.round((Date.now() - t0) / 1000), report, output });
}

console.log('\nscenario                 exit  seconds');
for (const o of outcomes)
  console.log(`${o.scenario.padEnd(24)} ${String(o.code).padStart(4)}  ${String(o.seconds).padStart(7)}`);
console.log(`written ${writeReport('run', { when: new Date().toISOString(), full, outcomes })}`);
if (outcomes.some((o) => o.code !== 0)) process.exitCode = 1;
