/**
 * npm run compat [-- FILE...]: docker-py's own integration suite (7.2.0, kept beside the repo in
 * ../shared/compat/docker-py, never copied in) against a fresh shoald in its own network
 * namespace. Prints a table per file and exits non-zero when a test fails that is not in
 * EXPECTED_FAILURES (lists.ts). FILE is a suite file name such as api_network (default: all).
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
import { createNetns, deleteNetns } from '../../test/helpers/netns.js';
import { importSuiteImages } from './images.js';
import { parseJunit, type CaseResult } from './junit.js';
import { DESELECTED, EXPECTED_FAILURES, SUITE_FILES } from './lists.js';
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

interface FileResult {
  file: string;
  cases: CaseResult[];
  deselected: number;
  seconds: number;
}

function pickFiles(argv: string[]): string[] {
  if (argv.length === 0) return [...SUITE_FILES];
  for (const f of argv)
    if (!(SUITE_FILES as readonly string[]).includes(f))
      throw new Error(`unknown suite file ${f}; one of: ${SUITE_FILES.join(' ')}`);
  return argv;
}

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
  d: TestDaemon,
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

function count(cases: CaseResult[], outcome: CaseResult['outcome']): number {
  return cases.filter((c) => c.outcome === outcome).length;
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
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const [i, r] of rows.entries()) {
    console.log(r.map((c, j) => (j === 0 ? c.padEnd(widths[j]) : c.padStart(widths[j]))).join('  '));
    if (i === 0 || i === rows.length - 2) console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  }
}

async function main(): Promise<number> {
  const files = pickFiles(process.argv.slice(2));
  const suite = await findSuite();
  if (process.getuid?.() !== 0) throw new Error('npm run compat needs root (it creates a namespace and runs shoald)');
  const began = Date.now();
  const python = await ensureVenv();
  const ns = await createNetns('shcompat');
  let d: TestDaemon | undefined;
  const logDir = fs.mkdtempSync('/tmp/shoal-compat-');
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
    d = await startDaemon({ ns, prefix: 'shcompat' });
    await importSuiteImages(d.docker, logDir);
    console.log(`shoald ${d.name} in netns ${ns} (eth0 ${ip}); suite ${suite}; logs in ${logDir}`);
    const results: FileResult[] = [];
    for (const f of files) {
      const r = await runFile(f, suite, d, python, logDir);
      results.push(r);
      console.log(
        `  ${f}: ${count(r.cases, 'passed')} passed, ${count(r.cases, 'failed')} failed, ${count(r.cases, 'skipped')} skipped (${r.seconds.toFixed(0)} s)`,
      );
    }
    console.log('');
    printTable(results);
    const failed = results.flatMap((r) => r.cases.filter((c) => c.outcome === 'failed'));
    const unexpected = failed.filter((c) => !(c.id in EXPECTED_FAILURES));
    const expected = failed.filter((c) => c.id in EXPECTED_FAILURES);
    const nowPassing = results.flatMap((r) =>
      r.cases.filter((c) => c.outcome === 'passed' && c.id in EXPECTED_FAILURES),
    );
    const ran = new Set(files.map((f) => `tests/integration/${f}_test.py::`));
    const inRun = (id: string) => [...ran].some((p) => id.startsWith(p));
    const deselected = Object.entries(DESELECTED).filter(([id]) => inRun(id));
    if (deselected.length) {
      console.log('\ndeselected:');
      for (const [id, why] of deselected) console.log(`  ${id}\n      ${why}`);
    }
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
    console.log(
      `\ncompat: ${unexpected.length} unexpected failure(s); ${((Date.now() - began) / 1000).toFixed(0)} s in all`,
    );
    return unexpected.length === 0 ? 0 : 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await cleanup();
  }
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e instanceof Error ? (e.stack ?? e.message) : e);
    process.exit(2);
  },
);
