import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { machinePaths } from '../../src/lab/settings.js';
import { createSwarmLab, type SwarmLab } from '../helpers/swarm-lab.js';
import { waitFor } from '../helpers/process.js';

// Needs root: a manager and a worker (namespaces, shoald, etcd, runc) driven by the real docker CLI.

/** Mount points and their filesystem types in this mount namespace. */
function mounts(): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    const sep = f.indexOf('-');
    if (f[4] && sep > 0) out.set(f[4], f[sep + 1]);
  }
  return out;
}

/** Regular files under `root` holding `needle`, not descending into mounts (what is on the disk). */
function filesContaining(root: string, needle: Buffer): string[] {
  const mounted = mounts();
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) {
        if (!mounted.has(p)) walk(p);
      } else if (e.isFile()) {
        try {
          if (fs.readFileSync(p).includes(needle)) found.push(p);
        } catch {
          /* gone meanwhile */
        }
      }
    }
  };
  walk(root);
  return found;
}

describe('secrets and configs on a swarm', () => {
  let swarm: SwarmLab;
  const d = (m: string, args: string[], input?: string) => swarm.lab.docker(m, args, { allowFail: true, input });
  const ok = async (m: string, args: string[], input?: string) => {
    const r = await d(m, args, input);
    assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stderr}`);
    return r.stdout.trim();
  };
  const secretText = `s3cr3t-${randomBytes(12).toString('hex')}`;
  const configText = `listen=${randomBytes(6).toString('hex')}\n`;
  /** `ls -ln` of a file in a container: mode, uid, gid. */
  const modeOwner = async (cid: string, file: string) => {
    const f = (await ok('m2', ['exec', cid, 'ls', '-ln', file])).split(/\s+/);
    return [f[0], f[2], f[3]];
  };
  /** The running task container of `svc` on the worker. */
  const taskContainer = async (svc: string) => {
    let id = '';
    await waitFor(
      `a running ${svc} task on m2`,
      async () => {
        id = (await d('m2', ['ps', '-q', '--filter', `label=com.docker.swarm.service.name=${svc}`])).stdout
          .trim()
          .split('\n')[0];
        return !!id;
      },
      90_000,
      500,
    );
    return id;
  };

  before(async () => {
    swarm = await createSwarmLab({ managers: ['m1'], workers: ['m2'], busybox: true });
  });

  after(async () => {
    await swarm?.cleanup();
  });

  it('autolock on; secret create; config create', async () => {
    await ok('m1', ['swarm', 'update', '--autolock=true']);
    assert.match(await ok('m1', ['secret', 'create', 'db_pass', '-'], secretText), /^[a-z0-9]{25}$/);
    assert.match(await ok('m1', ['config', 'create', 'app.conf', '-'], configText), /^[a-z0-9]{25}$/);
    assert.equal(await ok('m1', ['secret', 'ls', '--format', '{{.Name}}']), 'db_pass');
    for (const args of [
      ['secret', 'ls'],
      ['config', 'inspect', 'app.conf'],
      ['secret', 'create', 'w', '-'],
    ]) {
      const r = await d('m2', args, 'x');
      assert.notEqual(r.code, 0);
      assert.match(
        r.stderr,
        /This node is not a swarm manager\. Worker nodes can't be used to view or modify cluster state/,
      );
    }
  });

  it('a task on the worker reads its secret (content, owner, mode) and its config', async () => {
    await ok('m1', [
      'service',
      'create',
      '--detach',
      '--name',
      'app',
      '--constraint',
      'node.role==worker',
      '--secret',
      'source=db_pass,target=pw,uid=1000,gid=100,mode=0400',
      '--config',
      'app.conf',
      'busybox',
      'sleep',
      '100000',
    ]);
    const cid = await taskContainer('app');
    assert.equal(await ok('m2', ['exec', cid, 'cat', '/run/secrets/pw']), secretText);
    assert.deepEqual(await modeOwner(cid, '/run/secrets/pw'), ['-r--------', '1000', '100']);
    assert.equal(await ok('m2', ['exec', cid, 'cat', '/app.conf']), configText.trim());
    assert.deepEqual(await modeOwner(cid, '/app.conf'), ['-r--r--r--', '0', '0']);
    // Read-only in the container.
    assert.notEqual((await d('m2', ['exec', cid, 'sh', '-c', 'echo x > /run/secrets/pw'])).code, 0);
  });

  it('the secret lives on tmpfs on the worker, on no disk of any machine (etcd holds it sealed)', async () => {
    const taskId = await ok('m2', [
      'inspect',
      '--format',
      '{{index .Config.Labels "com.docker.swarm.task.id"}}',
      await taskContainer('app'),
    ]);
    const worker = machinePaths(swarm.lab.labDir, 'm2');
    const dir = path.join(worker.execRoot, 'task-files', taskId);
    assert.equal(mounts().get(dir), 'tmpfs', `${dir} is a tmpfs`);
    for (const m of ['m1', 'm2']) {
      const p = machinePaths(swarm.lab.labDir, m);
      assert.deepEqual(filesContaining(p.dir, Buffer.from(secretText)), [], `plaintext secret on ${m}'s disk`);
      assert.deepEqual(
        filesContaining(p.dir, Buffer.from(Buffer.from(secretText).toString('base64'))),
        [],
        `base64 secret on ${m}'s disk`,
      );
    }
  });

  it('secret rm of a secret in use is refused; after service update --secret-rm it works', async () => {
    let r = await d('m1', ['secret', 'rm', 'db_pass']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /secret 'db_pass' is in use by the following service: app/);
    r = await d('m1', ['config', 'rm', 'app.conf']);
    assert.match(r.stderr, /config 'app.conf' is in use by the following service: app/);
    await ok('m1', ['service', 'update', '--detach=false', '--secret-rm', 'db_pass', 'app']);
    const cid = await taskContainer('app');
    assert.notEqual((await d('m2', ['exec', cid, 'cat', '/run/secrets/pw'])).code, 0, 'the new task has no secret');
    await ok('m1', ['secret', 'rm', 'db_pass']);
    assert.equal(await ok('m1', ['secret', 'ls', '-q']), '');
  });

  it('docker rm -f of a task container takes its files away', async () => {
    const cid = await taskContainer('app');
    const taskId = await ok('m2', ['inspect', '--format', '{{index .Config.Labels "com.docker.swarm.task.id"}}', cid]);
    const dir = path.join(machinePaths(swarm.lab.labDir, 'm2').execRoot, 'task-files', taskId);
    assert.equal(mounts().get(dir), 'tmpfs', "the config is on the task's tmpfs");
    await ok('m2', ['rm', '-f', cid]);
    await waitFor(`${dir} gone`, async () => !fs.existsSync(dir), 30_000, 200);
    assert.ok(!mounts().has(dir));
  });

  it('service rm takes the task files away with the container', async () => {
    await ok('m1', ['service', 'rm', 'app']);
    const root = path.join(machinePaths(swarm.lab.labDir, 'm2').execRoot, 'task-files');
    await waitFor(
      'no task files on m2',
      async () => !fs.existsSync(root) || fs.readdirSync(root).length === 0,
      60_000,
      500,
    );
    assert.ok(![...mounts().keys()].some((m) => m.startsWith(root + '/')));
    await ok('m1', ['config', 'rm', 'app.conf']);
  });

  it("a task whose configs add up to more than gRPC's 4 MiB default still gets them all", async () => {
    const names = ['big0', 'big1', 'big2', 'big3', 'big4'];
    const body = 'x'.repeat(900 * 1024);
    for (const n of names) await ok('m1', ['config', 'create', n, '-'], body);
    await ok('m1', [
      'service',
      'create',
      '--detach',
      '--name',
      'bulky',
      '--constraint',
      'node.role==worker',
      ...names.flatMap((n) => ['--config', n]),
      'busybox',
      'sleep',
      '100000',
    ]);
    const cid = await taskContainer('bulky');
    for (const n of names) assert.equal(await ok('m2', ['exec', cid, 'wc', '-c', `/${n}`]), `${body.length} /${n}`);
    await ok('m1', ['service', 'rm', 'bulky']);
  });

  it('docker stack deploy with a secret file; stack rm takes the secret away', async () => {
    const dir = fs.mkdtempSync(path.join(swarm.lab.labDir, 'stack-'));
    const stackSecret = `stack-${randomBytes(8).toString('hex')}`;
    fs.writeFileSync(path.join(dir, 'pw.txt'), stackSecret);
    fs.writeFileSync(
      path.join(dir, 'compose.yml'),
      [
        'version: "3.8"',
        'services:',
        '  app:',
        '    image: busybox',
        '    command: ["sleep", "100000"]',
        '    secrets: [pw]',
        '    deploy:',
        '      placement:',
        '        constraints: ["node.role==worker"]',
        'secrets:',
        '  pw:',
        '    file: ./pw.txt',
        '',
      ].join('\n'),
    );
    await ok('m1', ['stack', 'deploy', '--resolve-image', 'never', '-c', path.join(dir, 'compose.yml'), 'st']);
    assert.equal(
      await ok('m1', ['secret', 'ls', '--filter', 'label=com.docker.stack.namespace=st', '--format', '{{.Name}}']),
      'st_pw',
    );
    const cid = await taskContainer('st_app');
    assert.equal(await ok('m2', ['exec', cid, 'cat', '/run/secrets/pw']), stackSecret);
    // The CLI removes services, then secrets, configs and networks; a network whose tasks are
    // still shutting down refuses removal (as swarmkit's does), which is not this test's concern.
    const rm = await d('m1', ['stack', 'rm', 'st']);
    assert.ok(rm.code === 0 || /network .* is in use by task/.test(rm.stderr), rm.stderr);
    await waitFor(
      'st_pw removed',
      async () => (await ok('m1', ['secret', 'ls', '--format', '{{.Name}}'])).split('\n').every((n) => n !== 'st_pw'),
      60_000,
      500,
    );
  });
});
