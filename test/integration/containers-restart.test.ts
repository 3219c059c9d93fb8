import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { importBusybox } from '../helpers/busybox.js';
import { alive, sleep, waitFor } from '../helpers/process.js';
import { processIs } from '../../src/engine/containers/runtime.js';

// Needs root. One daemon, killed with SIGKILL and started again on the same roots.
let d: TestDaemon | undefined;
const IMG = 'shtbusybox';

before(async () => {
  d = await startDaemon({ prefix: 'shtrst' });
  await importBusybox(d.docker, d.dir, IMG);
});
after(async () => {
  await d?.destroy();
});

const out = async (...args: string[]) => (await d!.docker(args)).stdout.trim();

function conmonPids(execRoot: string): number[] {
  const dir = `${execRoot}/conmon`;
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).flatMap((c) => {
    try {
      return [Number(fs.readFileSync(`${dir}/${c}/conmon.pid`, 'utf8'))];
    } catch {
      return [];
    }
  });
}

test('after kill -9 of shoald the new daemon adopts running containers: ps, logs continue, stop works', async () => {
  const id = await out(
    'run',
    '-d',
    '--name',
    'survivor',
    IMG,
    'sh',
    '-c',
    'trap "exit 3" TERM; i=0; while true; do echo tick$i; i=$((i+1)); sleep 0.3; done',
  );
  await out('run', '-d', '--name', 'dies-while-away', IMG, 'sh', '-c', 'sleep 1; exit 5');
  await out(
    'run',
    '-d',
    '--name',
    'published',
    '-p',
    '18081:8000',
    IMG,
    'sh',
    '-c',
    'mkdir /www && echo pub > /www/index.html && exec httpd -f -p 8000 -h /www',
  );
  const pid = Number(await out('inspect', '--format', '{{.State.Pid}}', 'survivor'));
  const ip = await out('inspect', '--format', '{{.NetworkSettings.Networks.bridge.IPAddress}}', 'survivor');
  await waitFor('first ticks', async () => (await out('logs', 'survivor')).includes('tick1'));

  await d!.kill9();
  assert.ok(alive(pid), 'the container outlives its daemon');
  await sleep(1500);
  await d!.start();

  const ps = await out('ps', '--format', '{{.Names}} {{.Status}}');
  assert.match(ps, /^survivor Up /m);
  assert.equal(
    await out(
      'inspect',
      '--format',
      '{{.Id}} {{.State.Pid}} {{.NetworkSettings.Networks.bridge.IPAddress}}',
      'survivor',
    ),
    `${id} ${pid} ${ip}`,
  );
  // The other one exited while no daemon was there; conmon kept its exit code.
  await waitFor(
    'exit recorded',
    async () =>
      (await out('inspect', '--format', '{{.State.Status}} {{.State.ExitCode}}', 'dies-while-away')) === 'exited 5',
  );

  const before = (await out('logs', 'survivor')).split('\n').length;
  await waitFor('logs to continue', async () => (await out('logs', 'survivor')).split('\n').length > before + 2);

  // Published ports are still this daemon's: a later start rewrites the rules and keeps them.
  await out('run', '-d', IMG, 'true');
  const page = await waitFor(
    'published page',
    async () => (await d!.inNs('curl', ['-sf', 'http://172.17.0.1:18081/'], { allowFail: true })).stdout,
  );
  assert.equal(page, 'pub\n');

  await d!.docker(['stop', 'survivor']);
  assert.equal(await out('inspect', '--format', '{{.State.Status}} {{.State.ExitCode}}', 'survivor'), 'exited 3');
  assert.equal(alive(pid), false);
  // A fresh container on the adopted daemon gets an address not in use.
  await out('run', '-d', '--name', 'after', IMG, 'sleep', '300');
  assert.match(
    await out('inspect', '--format', '{{.NetworkSettings.Networks.bridge.IPAddress}}', 'after'),
    /^172\.17\./,
  );
});

test('after a power cut the daemon starts again what the restart policies ask for, as dockerd at boot', async () => {
  const policies: Record<string, string[]> = {
    'boot-always': ['--restart', 'always'],
    'boot-unless': ['--restart', 'unless-stopped'],
    'boot-onfail': ['--restart', 'on-failure'],
    'boot-no': [],
    'boot-always-stopped': ['--restart', 'always'],
    'boot-unless-stopped': ['--restart', 'unless-stopped'],
  };
  const pids = new Map<string, number>();
  for (const [name, policy] of Object.entries(policies)) {
    await out('run', '-d', '--name', name, ...policy, IMG, 'sleep', '1000');
    if (!name.endsWith('-stopped')) pids.set(name, Number(await out('inspect', '--format', '{{.State.Pid}}', name)));
  }
  await out('stop', '-t', '0', 'boot-always-stopped', 'boot-unless-stopped');

  await d!.powerCut();
  await waitFor('the containers dead', () => [...pids.values()].every((pid) => !alive(pid)));
  await d!.start();

  // always (even after docker stop), unless-stopped and on-failure (a killed container exits non-zero) run again.
  const back = ['boot-always', 'boot-unless', 'boot-onfail', 'boot-always-stopped'];
  await waitFor('restarted at boot', async () => {
    const states = await Promise.all(back.map((n) => out('inspect', '--format', '{{.State.Status}}', n)));
    return states.every((s) => s === 'running');
  });
  for (const n of back)
    assert.notEqual(Number(await out('inspect', '--format', '{{.State.Pid}}', n)), pids.get(n) ?? 0, n);
  assert.equal(await out('inspect', '--format', '{{.State.Status}}', 'boot-no'), 'exited');
  assert.equal(await out('inspect', '--format', '{{.State.Status}}', 'boot-unless-stopped'), 'exited');
  // A docker stop after the boot holds again.
  await out('stop', '-t', '0', 'boot-always');
  await sleep(500);
  assert.equal(await out('inspect', '--format', '{{.State.Status}}', 'boot-always'), 'exited');
});

test('conmon of an adopted container leaves no zombie when the container ends', async () => {
  await out('run', '-d', '--name', 'adopted', IMG, 'sleep', '1000');
  const id = await out('inspect', '--format', '{{.Id}}', 'adopted');
  const conmon = Number(fs.readFileSync(`${d!.execRoot}/conmon/${id.slice(0, 16)}/conmon.pid`, 'utf8'));
  assert.ok(processIs(conmon, 'conmon'));
  await d!.kill9();
  await d!.start();
  await out('stop', '-t', '0', 'adopted');
  // Gone from the process table, not only dead: whoever adopted the orphan reaped it.
  await waitFor('conmon reaped', () => !fs.existsSync(`/proc/${conmon}`));
});

test('purgeDaemonState (via destroy) kills containers and conmon and removes mounts and runc state', async () => {
  await out('run', '-d', '--name', 'left-running', IMG, 'sleep', '300');
  const pid = Number(await out('inspect', '--format', '{{.State.Pid}}', 'left-running'));
  const conmons = conmonPids(d!.execRoot);
  assert.ok(conmons.length >= 2);
  const dir = d!.dir;
  await d!.kill9();
  await d!.destroy();
  d = undefined;
  assert.equal(alive(pid), false);
  // An exited conmon may linger as a zombie of whatever reaper adopted it: only a live one counts.
  for (const c of conmons) assert.equal(processIs(c, 'conmon'), false, `conmon ${c} still alive`);
  const mounts = fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => l.split(' ')[4]?.startsWith(dir));
  assert.deepEqual(mounts, []);
  assert.equal(fs.existsSync(dir), false);
});
