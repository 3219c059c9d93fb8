import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { createApiCA, signApiCert } from '../../src/cluster/api-certs.js';
import { machinePaths } from '../../src/lab/settings.js';
import { run, type RunResult } from '../../src/util/run.js';
import { DOCKER } from '../helpers/daemon.js';
import { SHOAL_JS } from '../helpers/lab.js';
import { createSwarmLab, type SwarmLab } from '../helpers/swarm-lab.js';
import { auditEntries, type AuditEntry } from '../helpers/audit-log.js';
import { waitFor } from '../helpers/process.js';

// Needs root: a manager and a worker (namespaces, shoald, etcd, runc), driven by the real docker
// CLI over tcp://<machine>:2376 with TLS from the lab hub's namespace (the host has no route in).

/** `export K="V"` lines of `shoal machine env` as an environment. */
function parseEnv(out: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const m of out.matchAll(/^export (\w+)="([^"]*)"$/gm)) env[m[1]] = m[2];
  return env;
}

/** Files under `root` holding `needle` (not descending into mounts: a running task's tmpfs is allowed to). */
function filesContaining(root: string, needle: Buffer): string[] {
  const found: string[] = [];
  const walk = (dir: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return; // gone meanwhile (an ended task's container directory)
    }
    for (const e of entries) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) {
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

/** An audit entry for PATH (exact, or a pattern) by a client whose subject starts with CLIENT, with OUTCOME. */
const audited = (p: string | RegExp, client: string, outcome: string) => (l: AuditEntry) =>
  (typeof p === 'string' ? l.path === p : p.test(String(l.path))) &&
  String(l.client).startsWith(client) &&
  l.outcome === outcome;

/** The part of `bytes`' base64 that is the same whatever precedes or follows it, for each alignment. */
function base64Needles(bytes: Buffer): Buffer[] {
  return [0, 1, 2].map((k) => {
    const b64 = Buffer.concat([Buffer.alloc(k), bytes]).toString('base64');
    return Buffer.from(b64.slice(k ? 4 : 0, -4));
  });
}

describe('the Engine API over TLS on a swarm: machine env --tls, roles, shoal cert create, audit', () => {
  let swarm: SwarmLab;
  let hubNs: string;
  const envs = new Map<string, Record<string, string>>();
  const certDir = (who: string) => path.join(swarm.lab.labDir, 'client-certs', who);

  /** The docker CLI in the hub namespace with `env` (DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH). */
  const cli = (env: Record<string, string>, args: string[], input?: string): Promise<RunResult> =>
    run('nsenter', [`--net=/var/run/netns/${hubNs}`, DOCKER, ...args], {
      env: { PATH: process.env.PATH ?? '', HOME: swarm.lab.labDir, DOCKER_CLI_HINTS: 'false', ...env },
      allowFail: true,
      input,
    });
  /** `shoal cert create --role ROLE WHO` in the hub namespace as the client `env`, into certDir(WHO). */
  const certCreate = (env: Record<string, string>, role: string, who: string): Promise<RunResult> =>
    run(
      'nsenter',
      [
        `--net=/var/run/netns/${hubNs}`,
        process.execPath,
        SHOAL_JS,
        'cert',
        'create',
        '--role',
        role,
        '--out',
        certDir(who),
        who,
      ],
      { env: { ...process.env, ...env }, allowFail: true },
    );
  /** The env of `machine` with another client's certificates. */
  const as = (who: string, machine = 'm1') => ({ ...envs.get(machine)!, DOCKER_CERT_PATH: certDir(who) });
  const ok = async (env: Record<string, string>, args: string[], input?: string) => {
    const r = await cli(env, args, input);
    assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stderr}`);
    return r.stdout.trim();
  };
  const denied = async (env: Record<string, string>, args: string[], role: string) => {
    const r = await cli(env, args);
    assert.notEqual(r.code, 0, `${role} could docker ${args.join(' ')}`);
    assert.match(r.stderr, new RegExp(`role ${role} \\(CN=[^)]*\\) may not`), `docker ${args.join(' ')}: ${r.stderr}`);
  };
  const secretText = `tls-s3cr3t-${randomBytes(12).toString('hex')}`;

  before(async () => {
    swarm = await createSwarmLab({ managers: ['m1'], workers: ['w1'], busybox: true });
    hubNs = `${swarm.lab.prefix}-hub`;
    for (const m of swarm.machines) envs.set(m, parseEnv((await swarm.lab.machine(['env', '--tls', m])).stdout));
  });
  after(async () => {
    await swarm?.cleanup();
  });

  it("machine env --tls prints docker-machine's three variables", () => {
    const e = envs.get('m1')!;
    assert.equal(e.DOCKER_TLS_VERIFY, '1');
    assert.equal(e.DOCKER_HOST, `tcp://${swarm.ip.get('m1')}:2376`);
    assert.ok(['ca.pem', 'cert.pem', 'key.pem'].every((f) => fs.existsSync(path.join(e.DOCKER_CERT_PATH, f))));
  });

  it('the docker CLI over tcp://…:2376 runs a walkthrough: node ls, service create -p, scale, inspect', async () => {
    const e = envs.get('m1')!;
    assert.deepEqual((await ok(e, ['node', 'ls', '--format', '{{.Hostname}} {{.Status}}'])).split('\n').sort(), [
      'm1 Ready',
      'w1 Ready',
    ]);
    await ok(e, [
      'service',
      'create',
      '--detach',
      '--name',
      'web',
      '-p',
      '8080:80',
      '--replicas',
      '1',
      'busybox',
      'httpd',
      '-f',
      '-p',
      '80',
    ]);
    await ok(e, ['service', 'scale', '--detach', 'web=3']);
    await waitFor(
      'web at 3/3',
      async () => (await ok(e, ['service', 'ls', '--filter', 'name=web', '--format', '{{.Replicas}}'])) === '3/3',
      120_000,
      500,
    );
    assert.equal(
      await ok(e, [
        'service',
        'inspect',
        'web',
        '--format',
        '{{.Spec.Mode.Replicated.Replicas}} {{(index .Endpoint.Ports 0).PublishedPort}}',
      ]),
      '3 8080',
    );
    // The worker serves TLS too, with its own machine certificate.
    assert.equal(await ok(envs.get('w1')!, ['info', '--format', '{{.Swarm.LocalNodeState}}']), 'active');
  });

  it('plaintext, certificate-less and wrong-CA clients are refused', async () => {
    const e = envs.get('m1')!;
    const plain = await cli({ DOCKER_HOST: e.DOCKER_HOST }, ['version', '--format', '{{.Server.Version}}']);
    assert.notEqual(plain.code, 0);
    const noCert = await cli({ DOCKER_HOST: e.DOCKER_HOST }, [
      '--tlsverify',
      '--tlscacert',
      path.join(e.DOCKER_CERT_PATH, 'ca.pem'),
      'version',
    ]);
    assert.notEqual(noCert.code, 0);
    const other = await createApiCA('not-the-lab');
    const c = await signApiCert(other, { subject: 'CN=mallory, OU=admin', usage: 'client' });
    const dir = certDir('mallory');
    fs.mkdirSync(dir, { recursive: true });
    fs.copyFileSync(path.join(e.DOCKER_CERT_PATH, 'ca.pem'), path.join(dir, 'ca.pem'));
    fs.writeFileSync(path.join(dir, 'cert.pem'), c.certPem);
    fs.writeFileSync(path.join(dir, 'key.pem'), c.keyPem!);
    const wrong = await cli(as('mallory'), ['version', '--format', '{{.Server.Version}}']);
    assert.notEqual(wrong.code, 0);
    assert.doesNotMatch(wrong.stdout, /shoal/);
  });

  it('shoal cert create, via DOCKER_HOST over TLS, writes a viewer and an operator certificate', async () => {
    for (const [who, role] of [
      ['vera', 'viewer'],
      ['otto', 'operator'],
    ]) {
      const r = await certCreate(envs.get('m1')!, role, who);
      assert.equal(r.code, 0, r.stderr);
      for (const f of ['ca.pem', 'cert.pem', 'key.pem']) assert.ok(fs.existsSync(path.join(certDir(who), f)), f);
    }
    // Only admin may make certificates.
    const r = await certCreate(as('otto'), 'admin', 'sneaky');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /role operator .* may not "shoal certs"; it needs admin/);
  });

  it('a viewer lists and inspects on every node, and gets 403 on create, update, rm, exec', async () => {
    assert.match(await ok(as('vera'), ['service', 'ls']), /web/);
    assert.match(await ok(as('vera'), ['node', 'ls']), /w1/);
    await ok(as('vera'), ['service', 'inspect', 'web']);
    await ok(as('vera'), ['service', 'ps', 'web']);
    // One certificate for every node: the worker learnt the swarm's API client CA from its managers.
    await waitFor(
      'the worker to trust the API client CA',
      async () => (await cli(as('vera', 'w1'), ['ps'])).code === 0,
      30_000,
      500,
    );
    const cid = (await ok(as('vera', 'w1'), ['ps', '-q', '--filter', 'label=com.docker.swarm.service.name=web'])).split(
      '\n',
    )[0];
    assert.ok(cid, 'a web task runs on w1');
    await denied(as('vera'), ['service', 'create', '--detach', '--name', 'nope', 'busybox', 'sleep', '1'], 'viewer');
    await denied(as('vera'), ['service', 'update', '--detach', '--replicas', '1', 'web'], 'viewer');
    await denied(as('vera'), ['service', 'rm', 'web'], 'viewer');
    await denied(as('vera', 'w1'), ['exec', cid, 'true'], 'viewer');
    await denied(as('vera', 'w1'), ['rm', '-f', cid], 'viewer');
    // The CLI shows no body when an upgrade is refused (as with dockerd's authorization plugins): only the 403.
    const attach = await cli(as('vera', 'w1'), ['attach', '--no-stdin', cid]);
    assert.notEqual(attach.code, 0);
    assert.match(attach.stderr, /received 403/);
    await denied(as('vera'), ['node', 'update', '--availability', 'pause', 'w1'], 'viewer');
    // Logs are reads: a service's through the manager, a container's on its node.
    await ok(as('vera'), ['service', 'logs', 'web']);
    await ok(as('vera', 'w1'), ['logs', cid]);
  });

  it('an operator updates services but cannot swarm leave, node promote or read the unlock key', async () => {
    await ok(as('otto'), ['service', 'update', '--detach', '--replicas', '2', 'web']);
    await denied(as('otto'), ['swarm', 'leave', '--force'], 'operator');
    await denied(as('otto'), ['node', 'promote', 'w1'], 'operator');
    await denied(as('otto'), ['swarm', 'unlock-key'], 'operator');
    // A node's availability and labels are an operator's; its role and membership are not.
    await ok(as('otto'), ['node', 'update', '--availability', 'pause', '--label-add', 'zone=a', 'w1']);
    assert.equal(
      await ok(as('otto'), [
        'node',
        'inspect',
        'w1',
        '--format',
        '{{.Spec.Availability}} {{index .Spec.Labels "zone"}}',
      ]),
      'pause a',
    );
    await ok(as('otto'), ['node', 'update', '--availability', 'active', 'w1']);
    await denied(as('otto'), ['node', 'demote', 'm1'], 'operator');
    await denied(as('otto'), ['node', 'update', '--role', 'manager', 'w1'], 'operator');
    await denied(as('otto'), ['node', 'rm', '--force', 'w1'], 'operator');
    assert.equal(
      await ok(as('otto'), ['node', 'inspect', 'w1', '--format', '{{.Spec.Role}} {{.Spec.Availability}}']),
      'worker active',
    );
    await denied(as('otto'), ['swarm', 'update', '--autolock=true'], 'operator');
    await denied(as('otto'), ['swarm', 'ca', '--rotate', '--detach'], 'operator');
    await denied(as('otto'), ['swarm', 'join-token', '--rotate', 'worker'], 'operator');
    await denied(as('otto'), ['swarm', 'init', '--advertise-addr', swarm.ip.get('m1')!], 'operator');
    await denied(
      as('otto', 'w1'),
      ['swarm', 'join', '--token', 'SWMTKN-1-' + 'a'.repeat(50) + '-' + 'b'.repeat(25), `${swarm.ip.get('m1')}:2377`],
      'operator',
    );
    await ok(as('otto'), ['secret', 'create', 'tlspw', '-'], secretText);
    await ok(as('otto'), [
      'service',
      'create',
      '--detach',
      '--name',
      'usespw',
      '--secret',
      'tlspw',
      '--constraint',
      'node.role==worker',
      'busybox',
      'sleep',
      '600',
    ]);
    await waitFor(
      'usespw running',
      async () =>
        (await ok(envs.get('m1')!, ['service', 'ls', '--filter', 'name=usespw', '--format', '{{.Replicas}}'])) ===
        '1/1',
      90_000,
      500,
    );
  });

  it('the audit log on each node names the certificate of each write, and holds no secret', async () => {
    const lines = (m: string) => auditEntries(machinePaths(swarm.lab.labDir, m).dataRoot);
    const m1 = lines('m1');
    assert.ok(
      m1.some(
        (l) => l.path === '/services/create' && l.client === 'CN=shoal-machine-m1, OU=admin' && l.outcome === 'ok',
      ),
      'service create by the machine certificate',
    );
    const webId = await ok(envs.get('m1')!, ['service', 'inspect', 'web', '--format', '{{.ID}}']);
    assert.ok(
      m1.some((l) => l.path === '/services/create' && l.object === webId),
      'a create names the object it made',
    );
    // A swarm write is recorded once, by the manager the client called (each manager writes the store itself).
    const ottoUpdates = (ls: AuditEntry[]) =>
      ls.filter(audited(/^\/services\/[^/]+\/update$/, 'CN=otto, OU=operator, O=', 'ok'));
    assert.equal(ottoUpdates(m1).length, 1, 'service update by otto, once');
    assert.equal(ottoUpdates(lines('w1')).length, 0);
    assert.ok(m1.some(audited('/services/create', 'CN=vera, OU=viewer', 'denied')), 'denied create by vera');
    assert.ok(m1.some((l) => l.path === '/swarm/leave' && String(l.client).startsWith('CN=otto') && l.status === 403));
    assert.ok(m1.some((l) => l.path === '/secrets/create' && String(l.client).startsWith('CN=otto')));
    assert.ok(m1.some(audited(/^\/nodes\/[^/]+\/update$/, 'CN=otto', 'ok')), 'node update by otto');
    assert.ok(m1.some(audited(/^\/nodes\/[^/]+\/update$/, 'CN=otto', 'denied')), 'denied promote by otto');
    assert.ok(lines('w1').some(audited(/\/attach$/, 'CN=vera', 'denied')), 'denied attach on the worker');
    assert.ok(lines('w1').some(audited(/\/exec$/, 'CN=vera', 'denied')), 'denied exec on the worker');
    // No file of any machine (data root with etcd's data, audit and daemon logs) holds the
    // secret, in clear or in base64 at any of the three alignments it can have inside a longer
    // base64 text (a JSON body, an assignment).
    const needles = [Buffer.from(secretText), ...base64Needles(Buffer.from(secretText))];
    for (const m of swarm.machines) {
      const p = machinePaths(swarm.lab.labDir, m);
      for (const needle of needles) {
        const found = [
          ...filesContaining(p.dataRoot, needle),
          ...(fs.readFileSync(p.log).includes(needle) ? [p.log] : []),
        ];
        assert.deepEqual(found, [], `secret (${needle.toString()}) on ${m}`);
      }
    }
  });

  it('a worker keeps a secret only while a task using it runs: none left once they end', async () => {
    const e = envs.get('m1')!;
    await ok(e, [
      'service',
      'create',
      '--detach',
      '--name',
      'oneshot',
      '--secret',
      'tlspw',
      '--restart-condition',
      'none',
      '--constraint',
      'node.role==worker',
      'busybox',
      'sh',
      '-c',
      'test -s /run/secrets/tlspw && sleep 1',
    ]);
    await waitFor(
      'oneshot complete',
      async () => (await ok(e, ['service', 'ps', 'oneshot', '--format', '{{.CurrentState}}'])).startsWith('Complete'),
      90_000,
      500,
    );
    await ok(e, ['service', 'rm', 'usespw']);
    const execRoot = machinePaths(swarm.lab.labDir, 'w1').execRoot;
    await waitFor(
      "no secret left under the worker's exec root",
      () => filesContaining(execRoot, Buffer.from(secretText)).length === 0,
      30_000,
      500,
    );
  });

  it('machine regenerate-certs: the daemon serves the new certificate at once, clients keep working', async () => {
    const e = envs.get('m1')!;
    const served = async () =>
      (
        await run(
          'nsenter',
          [
            `--net=/var/run/netns/${hubNs}`,
            process.execPath,
            '-e',
            `
      const tls = require('node:tls'); const fs = require('node:fs'); const p = process.env.DOCKER_CERT_PATH;
      const s = tls.connect({ host: '${swarm.ip.get('m1')}', port: 2376, ca: fs.readFileSync(p + '/ca.pem'), cert: fs.readFileSync(p + '/cert.pem'), key: fs.readFileSync(p + '/key.pem') }, () => { console.log(s.getPeerCertificate().fingerprint256); s.end(); });`,
          ],
          { env: { ...process.env, ...e } },
        )
      ).stdout.trim();
    const before = await served();
    assert.match(before, /^[0-9A-F:]{95}$/);
    await swarm.lab.machine(['regenerate-certs', 'm1']);
    assert.notEqual(await served(), before);
    await ok(e, ['node', 'ls']);
  });
});
