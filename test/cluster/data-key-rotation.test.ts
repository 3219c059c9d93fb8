import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { machinePaths } from '../../src/lab/settings.js';
import { isSealed, openValue, parseHumanReadableKey } from '../../src/manager/ca/unlock-key.js';
import { createSwarmLab, type SwarmLab } from '../helpers/swarm-lab.js';
import { auditEntries } from '../helpers/audit-log.js';
import type { Service } from '../../src/cluster/types.js';
import { SHOAL_JS } from '../helpers/lab.js';
import { run } from '../../src/util/run.js';
import { waitFor } from '../helpers/process.js';

// Needs root: two managers (namespaces, shoald, etcd, runc) driven by the real docker CLI, and
// etcdctl inside the machine to read what etcd holds. Turning autolock on and rotating the
// unlock key rotate the swarm's data key: every sealed value is sealed again with the new key,
// the old key opens nothing, and tasks still get their secrets.

describe('data key rotation re-seals what the data key protects', () => {
  let swarm: SwarmLab;
  const ok = async (args: string[], input?: string) => {
    const r = await swarm.lab.docker('m1', args, { allowFail: true, input });
    assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stderr}`);
    return r.stdout.trim();
  };
  const certs = (m = 'm1') => path.join(machinePaths(swarm.lab.labDir, m).dataRoot, 'swarm', 'certificates');
  /** A manager's DEK from its file: plain, or sealed with `unlockKey`. */
  const dekOnDisk = (unlockKey?: string, m = 'm1'): Buffer => {
    const text = fs.readFileSync(path.join(certs(m), 'swarm-node.dek'), 'utf8').trim();
    if (text.startsWith('plain:')) return Buffer.from(text.slice(6), 'base64');
    assert.ok(unlockKey && text.startsWith('sealed:'), text.slice(0, 12));
    return openValue(parseHumanReadableKey(unlockKey), Buffer.from(text.slice(7)));
  };
  /** Key → value of everything under `prefix` in the manager's etcd (etcdctl in the machine). */
  const etcd = async (prefix: string): Promise<Map<string, Buffer>> => {
    const c = certs();
    const r = await swarm.lab.ssh('m1', [
      'etcdctl',
      '--endpoints=https://127.0.0.1:2379',
      `--cacert=${c}/etcd-ca.crt`,
      `--cert=${c}/etcd-node.crt`,
      `--key=${c}/swarm-node.key`,
      'get',
      '--prefix',
      prefix,
      '-w',
      'json',
    ]);
    const kvs = (JSON.parse(r.stdout) as { kvs?: { key: string; value: string }[] }).kvs ?? [];
    return new Map(kvs.map((kv) => [Buffer.from(kv.key, 'base64').toString(), Buffer.from(kv.value, 'base64')]));
  };
  /** Every sealed value etcd holds: the CA, the unlock key, each secret's data, services' registry credentials. */
  const sealedValues = async (): Promise<Map<string, Buffer>> => {
    const out = new Map<string, Buffer>();
    for (const [k, v] of await etcd('/shoal/')) {
      if (k.startsWith('/shoal/v1/secrets/')) {
        const data = (JSON.parse(v.toString()) as { Spec: { Data: string } }).Spec.Data;
        out.set(k, Buffer.from(data));
      } else if (k.startsWith('/shoal/v1/services/')) {
        const auth = (JSON.parse(v.toString()) as Service).Spec.TaskTemplate.ContainerSpec?.PullOptions?.RegistryAuth;
        if (auth) out.set(k, Buffer.from(auth));
      } else if (isSealed(v)) out.set(k, v);
    }
    return out;
  };
  const opens = (dek: Buffer, v: Buffer) => {
    try {
      openValue(dek, v);
      return true;
    } catch {
      return false;
    }
  };
  /** The rotation's hand-over of the new data key is deleted from etcd: every manager has taken it. */
  const handOverDone = () =>
    waitFor(
      'the data key hand-over deleted',
      async () => !(await etcd('/shoal/unlock-key.next-dek')).size,
      30_000,
      250,
    );
  /** The other manager holds `dek` on disk, sealed with `unlockKey`. */
  const m2Follows = (unlockKey: string, dek: Buffer) =>
    waitFor(
      'm2 holds the new data key',
      () => {
        try {
          return dekOnDisk(unlockKey, 'm2').equals(dek);
        } catch {
          return false;
        }
      },
      30_000,
      250,
    );
  /** `shoal dashboard token` against manager `m`: the swarm's one token, kept sealed in etcd. */
  const dashboardToken = async (m: string) =>
    (
      await run(process.execPath, [SHOAL_JS, 'dashboard', 'token'], {
        env: { ...swarm.lab.env, DOCKER_HOST: await swarm.lab.dockerHost(m) },
      })
    ).stdout.trim();
  const secretText = `rot-s3cr3t-${randomBytes(12).toString('hex')}`;

  before(async () => {
    swarm = await createSwarmLab({ managers: ['m1', 'm2'], busybox: true });
  });
  after(async () => {
    await swarm?.cleanup();
  });

  /** Runs a one-shot task reading the secret; its output must be the secret. */
  const taskReads = async (name: string) => {
    await ok([
      'service',
      'create',
      '--detach',
      '--name',
      name,
      '--secret',
      'pw',
      '--restart-condition',
      'none',
      'busybox',
      'cat',
      '/run/secrets/pw',
    ]);
    let out = '';
    await waitFor(
      `${name} printed the secret`,
      async () => {
        out = await ok(['service', 'logs', '--raw', name]);
        return out.length > 0;
      },
      90_000,
      500,
    );
    assert.equal(out, secretText);
    await ok(['service', 'rm', name]);
  };

  it('autolock on: a new data key, every sealed value re-sealed with it, the old one opens nothing', async () => {
    await ok(['secret', 'create', 'pw', '-'], secretText);
    // A service given registry credentials (`--with-registry-auth`, from the CLI's config).
    const cliConfig = fs.mkdtempSync(path.join(swarm.lab.labDir, 'cli-'));
    const auth = Buffer.from('deployer:rot-pw').toString('base64');
    fs.writeFileSync(
      path.join(cliConfig, 'config.json'),
      JSON.stringify({ auths: { 'https://index.docker.io/v1/': { auth } } }),
    );
    const created = await swarm.lab.docker(
      'm1',
      ['service', 'create', '--detach', '--with-registry-auth', '--name', 'withauth', 'busybox', 'sleep', '1d'],
      { allowFail: true, env: { DOCKER_CONFIG: cliConfig } },
    );
    assert.equal(created.code, 0, created.stderr);
    const dashToken = await dashboardToken('m1');
    const old = dekOnDisk();
    const before = await sealedValues();
    const storedToken = before.get('/shoal/dashboard-token');
    assert.ok(storedToken, 'the dashboard token is sealed in etcd');
    assert.ok(!storedToken.toString().includes(dashToken), 'and not in the clear');
    assert.ok(
      [...before.keys()].some((k) => k.startsWith('/shoal/v1/secrets/')),
      'the secret is sealed in etcd',
    );
    assert.ok(
      [...before.keys()].some((k) => k.startsWith('/shoal/v1/services/')),
      'the registry credentials are sealed in etcd',
    );
    for (const [k, v] of before) assert.ok(isSealed(v), `${k} is sealed`);
    assert.ok(before.has('/shoal/ca'), 'the CA is sealed in etcd');
    for (const [k, v] of before) assert.ok(opens(old, v), `${k} opens with the data key`);

    const out = await ok(['swarm', 'update', '--autolock=true']);
    const unlockKey = /(SWMKEY-1-[A-Za-z0-9+/]{43})/.exec(out)?.[1];
    assert.ok(unlockKey, out);
    const next = dekOnDisk(unlockKey);
    assert.notDeepEqual(next, old, 'a new data key');
    // The hand-over to other managers (sealed with the old key) goes once the sweep is done.
    await handOverDone();
    const after = await sealedValues();
    assert.deepEqual([...after.keys()].sort(), [...before.keys(), '/shoal/unlock-key'].sort());
    for (const [k, v] of after) {
      assert.ok(opens(next, v), `${k} opens with the new key`);
      assert.ok(!opens(old, v), `${k} no longer opens with the old key`);
    }
    // The other manager follows: the same new key at rest, sealed with the unlock key.
    await m2Follows(unlockKey, next);
    // The other manager opens the re-sealed dashboard token: the same token.
    assert.equal(await dashboardToken('m2'), dashToken);
    // A secret made through the other manager is sealed with the new key; its audit log (not m1's) records it.
    const r = await swarm.lab.docker('m2', ['secret', 'create', 'pw2', '-'], { input: 'two' });
    assert.equal(r.code, 0, r.stderr);
    const pw2 = r.stdout.trim();
    const stored = (await sealedValues()).get(`/shoal/v1/secrets/${pw2}`);
    assert.ok(stored && opens(next, stored) && !opens(old, stored));
    const audit = (m: string) =>
      auditEntries(machinePaths(swarm.lab.labDir, m).dataRoot).filter(
        (l) => l.path === '/secrets/create' && l.object === pw2,
      );
    assert.equal(audit('m2').length, 1);
    assert.equal(audit('m1').length, 0);
    await taskReads('reader1');
  });

  it('unlock-key --rotate rotates it again; after a restart and unlock tasks still read the secret', async () => {
    const first = dekOnDisk(await ok(['swarm', 'unlock-key', '-q']));
    const out = await ok(['swarm', 'unlock-key', '--rotate']);
    const unlockKey = /(SWMKEY-1-[A-Za-z0-9+/]{43})/.exec(out)?.[1];
    assert.ok(unlockKey, out);
    const next = dekOnDisk(unlockKey);
    assert.notDeepEqual(next, first);
    await handOverDone();
    for (const [k, v] of await sealedValues()) assert.ok(opens(next, v) && !opens(first, v), k);
    await m2Follows(unlockKey, next);
    await swarm.lab.machine(['stop', 'm1']);
    await swarm.lab.machine(['start', 'm1']);
    await ok(['swarm', 'unlock'], unlockKey + '\n');
    await waitFor(
      'm1 active',
      async () => (await ok(['info', '--format', '{{.Swarm.LocalNodeState}}'])) === 'active',
      60_000,
      500,
    );
    await taskReads('reader2');
  });
});
