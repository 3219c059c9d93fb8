/**
 * npm run compat [-- [--daemon shoal|dockerd|both] [--shoal-results DIR] [--dockerd-results DIR]
 * FILE...]: docker-py's own integration suite (7.2.0, kept beside the repo in ../shared/compat/docker-py, never copied
 * in) against a fresh shoald (default) and/or Debian's dockerd 20.10, each in a network
 * namespace of its own, run the same way (same files, deselects, images, environment). Prints a
 * table per file for each daemon. FILE is a suite file name such as api_network (default: all).
 *
 * Exit code: non-zero when shoal fails a test not in EXPECTED_FAILURES (lists.ts; shoal only),
 * or, when both are compared, when a test passes on dockerd and not on shoal. `--shoal-results
 * DIR` (`--dockerd-results DIR`) takes that daemon's results from an earlier run's log folder
 * (its JUnit files) instead of running it again: `--daemon dockerd --shoal-results DIR` compares
 * a fresh dockerd run with a stored shoal run.
 *
 * Environment: SHOAL_COMPAT_SUITE (the suite folder), SHOAL_COMPAT_VENV (where the virtualenv
 * with docker-py and pytest is kept between runs).
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomInt } from 'node:crypto';
import { run } from '../../src/util/run.js';
import { netnsPath } from '../../src/lab/network.js';
import { REPO_ROOT, startDaemon, type TestDaemon } from '../../test/helpers/daemon.js';
import { startDockerd, type TestDockerd } from '../../test/helpers/dockerd.js';
import { createNetns, deleteNetns } from '../../test/helpers/netns.js';
import { importSuiteImages } from './images.js';
import { parseJunit, type CaseResult } from './junit.js';
import { DESELECTED, EXPECTED_FAILURES } from './lists.js';
import { count, dockerdOnly, parseArgs, type DaemonKind, type FileResult } from './compare.js';
import { ensureVenv } from './venv.js';

/**
 * The suite lies in shared/ beside the repository: beside this checkout, or (in a git worktree)
 * beside the main checkout that holds the repository's .git.
 */
async function findSuite(): Promise<string> {
  if (process.env.SHOAL_COMPAT_SUITE) return path.resolve(process.env.SHOAL_COMPAT_SUITE);
  const beside = (root: string) => path.resolve(root, '../shared/compat/docker-py');
  const candidates = [beside(REPO_ROOT)];
  const common = await run('git', ['-C', REPO_ROOT, 'rev-parse', '--path-format=absolute', '--git-common-dir'], {
    allowFail: true,
  });
  if (common.code === 0) candidates.push(beside(path.dirname(common.stdout.trim())));
  const found = candidates.find((c) => fs.existsSync(path.join(c, 'tests/integration/conftest.py')));
  if (!found)
    throw new Error(
      `docker-py's suite is not in ${candidates.join(' nor ')} (../shared/compat/docker-py beside the repo; or set SHOAL_COMPAT_SUITE)`,
    );
  return found;
}
/** API version docker-py is told to speak (it defaults to 1.45, which a 1.41 engine refuses). */
const API_VERSION = '1.41';
/** Per test: a hung stream must not stall the run. */
const TEST_TIMEOUT_S = 60;

/**
 * An eth0 with an address: the swarm tests init with data_path_addr='eth0'. A veth pair with
 * both ends inside the namespace (this kernel has no dummy links).
 */
async function addEth0(ns: string): Promise<string> {
  const ip = `10.213.${randomInt(1, 254)}.2`;
  await run('ip', ['-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0peer']);
  await run('ip', ['-n', ns, 'link', 'set', 'eth0peer', 'up']);
  await run('ip', ['-n', ns, 'addr', 'add', `${ip}/24`, 'dev', 'eth0']);
  await run('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
  return ip;
}

async function runFile(
  file: string,
  suite: string,
  d: { ns: string; host: string },
  python: string,
  logDir: string,
): Promise<FileResult> {
  const junit = path.join(logDir, `${file}.xml`);
  const prefix = `tests/integration/${file}_test.py::`;
  const deselect = Object.keys(DESELECTED).filter((id) => id.startsWith(prefix));
  const args = [
    `--net=${netnsPath(d.ns)}`,
    '--',
    python,
    '-m',
    'pytest',
    `tests/integration/${file}_test.py`,
    '-p',
    'no:cacheprovider',
    `--junitxml=${junit}`,
    `--timeout=${TEST_TIMEOUT_S}`,
    '-q',
    ...deselect.flatMap((id) => ['--deselect', id]),
  ];
  const started = Date.now();
  const r = await run('nsenter', args, {
    cwd: suite,
    allowFail: true,
    // The suite folder is shared: no bytecode or cache written into it.
    env: {
      ...process.env,
      DOCKER_HOST: d.host,
      DOCKER_TEST_API_VERSION: API_VERSION,
      PYTHONDONTWRITEBYTECODE: '1',
      DOCKER_CONFIG: path.join(logDir, 'docker-config'),
    },
  });
  fs.writeFileSync(path.join(logDir, `${file}.log`), r.stdout + r.stderr);
  if (!fs.existsSync(junit))
    throw new Error(`pytest wrote no report for ${file} (exit ${r.code}):\n${(r.stdout + r.stderr).slice(-3000)}`);
  const cases = parseJunit(fs.readFileSync(junit, 'utf8'));
  return { file, cases, deselected: deselect.length, seconds: (Date.now() - started) / 1000 };
}

function printTable(results: FileResult[]): void {
  const rows = [['file', 'passed', 'failed', 'skipped', 'deselected', 'seconds']];
  const tot = [0, 0, 0, 0, 0];
  for (const r of results) {
    const n = [count(r.cases, 'passed'), count(r.cases, 'failed'), count(r.cases, 'skipped'), r.deselected, r.seconds];
    n.forEach((v, i) => (tot[i] += v));
    rows.push([r.file, ...n.map((v, i) => (i === 4 ? v.toFixed(0) : String(v)))]);
  }
  rows.push(['total', ...tot.map((v, i) => (i === 4 ? v.toFixed(0) : String(v)))]);
  printRows(rows);
}

function printRows(rows: string[][]): void {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const [i, r] of rows.entries()) {
    console.log(r.map((c, j) => (j === 0 ? c.padEnd(widths[j]) : c.padStart(widths[j]))).join('  '));
    if (i === 0 || i === rows.length - 2) console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  }
}

/** Per file, shoal's and dockerd's passed/failed side by side. */
function printSideBySide(shoal: FileResult[], dockerd: FileResult[]): void {
  const rows = [['file', 'shoal passed', 'shoal failed', 'dockerd passed', 'dockerd failed']];
  const tot = [0, 0, 0, 0];
  for (const dr of dockerd) {
    const sr = shoal.find((r) => r.file === dr.file);
    const n = [
      sr ? count(sr.cases, 'passed') : 0,
      sr ? count(sr.cases, 'failed') : 0,
      count(dr.cases, 'passed'),
      count(dr.cases, 'failed'),
    ];
    n.forEach((v, i) => (tot[i] += v));
    rows.push([dr.file, ...n.map(String)]);
  }
  rows.push(['total', ...tot.map(String)]);
  printRows(rows);
}

/** An earlier run's results, from the JUnit files in its log folder. */
function readResults(dir: string, files: string[]): FileResult[] {
  return files.map((file) => {
    const junit = path.join(dir, `${file}.xml`);
    if (!fs.existsSync(junit)) throw new Error(`no ${file}.xml in ${dir}`);
    const prefix = `tests/integration/${file}_test.py::`;
    const deselected = Object.keys(DESELECTED).filter((id) => id.startsWith(prefix)).length;
    return { file, cases: parseJunit(fs.readFileSync(junit, 'utf8')), deselected, seconds: 0 };
  });
}

/**
 * What dockerd could leave outside its namespace: a docker0 bridge or DOCKER chains in the
 * host's iptables. Compared before and after, so the run fails loudly if anything escaped.
 */
async function hostFootprint(): Promise<string> {
  const link = await run('ip', ['-o', 'link', 'show', 'docker0'], { allowFail: true });
  const ipt = await run(
    'sh',
    ['-c', 'iptables-save 2>/dev/null | grep -c DOCKER; ip6tables-save 2>/dev/null | grep -c DOCKER'],
    {
      allowFail: true,
    },
  );
  return `docker0 on host: ${link.code === 0}; DOCKER lines in host iptables/ip6tables: ${ipt.stdout.trim().split('\n').join('/')}`;
}

/** One daemon of the given kind in a namespace of its own, the images imported, the files run. */
async function runSuite(
  kind: DaemonKind,
  files: string[],
  suite: string,
  python: string,
  logRoot: string,
): Promise<FileResult[]> {
  const logDir = path.join(logRoot, kind);
  fs.mkdirSync(logDir, { recursive: true });
  const ns = await createNetns(kind === 'shoal' ? 'shcompat' : 'dkcompat');
  let d: TestDaemon | TestDockerd | undefined;
  const before = kind === 'dockerd' ? await hostFootprint() : '';
  const cleanup = async () => {
    await d?.destroy();
    await deleteNetns(ns);
  };
  const onSignal = () => {
    void cleanup()
      .catch((err: unknown) => console.error('cleanup failed', err))
      .finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const ip = await addEth0(ns);
    // dockerd keeps its default bridge and iptables rules: both are per network namespace.
    d =
      kind === 'shoal' ? await startDaemon({ ns, prefix: 'shcompat' }) : await startDockerd({ ns, prefix: 'dkcompat' });
    await importSuiteImages(d.docker, logDir);
    console.log(`${kind} ${d.name} in netns ${ns} (eth0 ${ip}); suite ${suite}; logs in ${logDir}`);
    const results: FileResult[] = [];
    for (const f of files) {
      const r = await runFile(f, suite, d, python, logDir);
      results.push(r);
      console.log(
        `  ${f}: ${count(r.cases, 'passed')} passed, ${count(r.cases, 'failed')} failed, ${count(r.cases, 'skipped')} skipped (${r.seconds.toFixed(0)} s)`,
      );
    }
    if (kind === 'dockerd') {
      const after = await hostFootprint();
      if (after !== before) throw new Error(`dockerd changed the host: before (${before}), after (${after})`);
      console.log(`host untouched by dockerd (${after})`);
    }
    return results;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await cleanup();
  }
}

/** The details under shoal's table; the number of unexpected failures. */
function reportShoal(results: FileResult[], files: string[]): number {
  const failed = results.flatMap((r) => r.cases.filter((c) => c.outcome === 'failed'));
  const unexpected = failed.filter((c) => !(c.id in EXPECTED_FAILURES));
  const expected = failed.filter((c) => c.id in EXPECTED_FAILURES);
  const nowPassing = results.flatMap((r) => r.cases.filter((c) => c.outcome === 'passed' && c.id in EXPECTED_FAILURES));
  if (expected.length) {
    console.log('\nexpected failures (also fail on dockerd 20.10, or out of scope):');
    for (const c of expected) console.log(`  ${c.id}\n      ${EXPECTED_FAILURES[c.id]}`);
  }
  if (nowPassing.length) {
    console.log('\nin EXPECTED_FAILURES but passed (take them off the list):');
    for (const c of nowPassing) console.log(`  ${c.id}`);
  }
  if (unexpected.length) {
    console.log('\nFAILED:');
    for (const c of unexpected) console.log(`  ${c.id}\n      ${c.message}`);
  }
  console.log(`\nshoal: ${unexpected.length} unexpected failure(s) in ${files.length} file(s)`);
  return unexpected.length;
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const { files } = args;
  const suite = await findSuite();
  if (process.getuid?.() !== 0)
    throw new Error('npm run compat needs root (it creates a namespace and runs the daemon)');
  const began = Date.now();
  const python = await ensureVenv();
  // Only a run writes logs; a comparison of stored results makes no folder.
  const logRoot = args.daemons.length ? fs.mkdtempSync('/tmp/shoal-compat-') : undefined;
  const all: Partial<Record<DaemonKind, FileResult[]>> = {};
  if (logRoot) for (const kind of args.daemons) all[kind] = await runSuite(kind, files, suite, python, logRoot);
  if (args.shoalResults) all.shoal = readResults(args.shoalResults, files);
  if (args.dockerdResults) all.dockerd = readResults(args.dockerdResults, files);
  let bad = 0;

  const ran = new Set(files.map((f) => `tests/integration/${f}_test.py::`));
  const deselected = Object.entries(DESELECTED).filter(([id]) => [...ran].some((p) => id.startsWith(p)));
  if (deselected.length) {
    console.log('\ndeselected (on every daemon):');
    for (const [id, why] of deselected) console.log(`  ${id}\n      ${why}`);
  }
  if (all.shoal) {
    console.log(`\nshoal${args.shoalResults ? ` (from ${args.shoalResults})` : ''}:`);
    printTable(all.shoal);
    bad += reportShoal(all.shoal, files);
  }
  if (all.dockerd) {
    console.log(`\ndockerd 20.10${args.dockerdResults ? ` (from ${args.dockerdResults})` : ''}:`);
    printTable(all.dockerd);
    const failed = all.dockerd.flatMap((r) => r.cases.filter((c) => c.outcome === 'failed'));
    if (failed.length) {
      console.log('\nfailed on dockerd:');
      for (const c of failed) console.log(`  ${c.id}\n      ${c.message}`);
    }
  }
  if (all.shoal && all.dockerd) {
    console.log('\nside by side:');
    printSideBySide(all.shoal, all.dockerd);
    const only = dockerdOnly(all.shoal, all.dockerd);
    console.log(`\npass on dockerd, not on shoal: ${only.length}`);
    for (const o of only) console.log(`  ${o.id}\n      shoal: ${o.shoal}`);
    bad += only.length;
  }
  console.log(`\ncompat: ${logRoot ? `logs in ${logRoot}; ` : ''}${((Date.now() - began) / 1000).toFixed(0)} s in all`);
  return bad === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e instanceof Error ? (e.stack ?? e.message) : e);
    process.exit(2);
  },
);
