import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createSwarmLab, type SwarmLab } from '../helpers/swarm-lab.js';
import { randomImageArchive, type ImageArchive } from '../helpers/image-archive.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { waitFor } from '../helpers/process.js';
import { serviceCreate, servicePsRows, taskRows } from '../helpers/service-cli.js';
import { run } from '../../src/util/run.js';
import { hubAddress } from '../../src/lab/addresses.js';
import { LabNames } from '../../src/lab/settings.js';

// Needs root: a three-machine lab (namespaces, shoald, etcd, runc), a Debian docker-registry
// with htpasswd (basic) auth on the lab network, the real docker CLI with its own config dir.

const USER = 'deployer';
const PASS = 'swarm-secret';
/** bcrypt (cost 5: the registry checks it on every request) of PASS, for the registry's htpasswd file. */
const PASS_BCRYPT = '$2b$05$iDYZQQCGwHvAOTbhfvW5I.OPqW077k6BCECTzXcEV6zMC1fXJtYSe';
/** The port every lab machine already reaches over plain HTTP (the lab registry's, unused here). */
const REGISTRY_PORT = 5000;

describe('services of a private registry image (--with-registry-auth)', () => {
  let swarm: SwarmLab;
  let registry: TestRegistry | undefined;
  let dir: string;
  /** DOCKER_CONFIG with the credentials (after `docker login`), and one without any. */
  let loggedIn: string;
  let anonymous: string;
  let reg: string;
  let img: ImageArchive;
  let image: string;

  const cli = (m: string, config: string, args: string[], input?: string) =>
    swarm.lab.docker(m, args, { allowFail: true, env: { DOCKER_CONFIG: config }, ...(input ? { input } : {}) });
  const ok = async (m: string, args: string[], config = anonymous) => {
    const r = await cli(m, config, args);
    assert.equal(r.code, 0, `docker ${args.join(' ')} on ${m}: ${r.stderr}`);
    return r.stdout.trim();
  };
  const machineDir = (m: string) => path.join(swarm.lab.labDir, 'machines', m);
  const log = (m: string) => fs.readFileSync(path.join(machineDir(m), 'shoald.log'), 'utf8');
  /** The service's tasks as `docker service ps` shows them: node, desired and current state, error. */
  const tasks = async (svc: string) => taskRows(await ok('m1', servicePsRows(svc)));
  /** `docker service create --detach` of the private image (sleeping), by the logged-in CLI on m1. */
  const createService = (name: string, flags: string[]) =>
    cli('m1', loggedIn, serviceCreate(name, ['--detach', ...flags], [image, 'sleep', '1d']));
  /** The image reference the service's spec holds (pinned by digest once the CLI resolved it). */
  const pinnedImage = (svc: string) =>
    ok('m1', ['service', 'inspect', svc, '--format', '{{.Spec.TaskTemplate.ContainerSpec.Image}}']);
  const runningOn = (svc: string, nodes: string[]) =>
    waitFor(
      `${svc} running on ${nodes.join(', ')}`,
      async () => {
        const t = await tasks(svc);
        const failed = t.find((x) => x.error);
        assert.ok(!failed, `a task of ${svc} failed: ${JSON.stringify(failed)}`);
        const up = t.filter((x) => x.desired === 'Running' && x.state.startsWith('Running')).map((x) => x.node);
        return up.length === nodes.length && JSON.stringify(up.sort()) === JSON.stringify([...nodes].sort());
      },
      180_000,
      1000,
    );
  /**
   * GET on machine `to`'s image server from inside machine `from`, with `from`'s node
   * certificate (the server checks the client's against the swarm's root CA and reads its CN).
   */
  const peerGet = async (from: string, to: string, urlPath: string) => {
    const certs = path.join(machineDir(from), 'data', 'swarm', 'certificates');
    const r = await swarm.lab.ssh(
      from,
      [
        'curl',
        '-s',
        '-k', // the server's certificate names its node ID, not its address
        '--cert',
        path.join(certs, 'swarm-node.crt'),
        '--key',
        path.join(certs, 'swarm-node.key'),
        '-w',
        '\n%{http_code}',
        `https://${swarm.ip.get(to)}:2378${urlPath}`,
      ],
      { allowFail: true },
    );
    const at = r.stdout.lastIndexOf('\n');
    return { status: Number(r.stdout.slice(at + 1)), body: r.stdout.slice(0, at) };
  };

  /** An Engine API request to m1 over its socket, as curl sends it: status and body. */
  const api = async (urlPath: string, headers: string[] = []) => {
    const socket = (await swarm.lab.dockerHost('m1')).replace(/^unix:\/\//, '');
    const r = await run('curl', [
      '-s',
      '--unix-socket',
      socket,
      ...headers.flatMap((h) => ['-H', h]),
      '-w',
      '\n%{http_code}',
      `http://shoal/v1.41${urlPath}`,
    ]);
    const at = r.stdout.lastIndexOf('\n');
    return { status: Number(r.stdout.slice(at + 1)), body: r.stdout.slice(0, at) };
  };

  before(async () => {
    swarm = await createSwarmLab({ managers: ['m1'], workers: ['m2', 'm3'] });
    dir = fs.mkdtempSync(path.join(swarm.lab.labDir, 'auth-'));
    loggedIn = fs.mkdtempSync(path.join(dir, 'cli-'));
    anonymous = fs.mkdtempSync(path.join(dir, 'cli-'));
    const htpasswd = path.join(dir, 'htpasswd');
    fs.writeFileSync(htpasswd, `${USER}:${PASS_BCRYPT}\n`);
    reg = `${hubAddress(swarm.lab.subnet)}:${REGISTRY_PORT}`;
    registry = await startRegistry(new LabNames(swarm.lab.prefix).hubNs, {
      addr: reg,
      extraConfig: ['auth:', '  htpasswd:', '    realm: shoal-test', `    path: ${htpasswd}`],
      readyStatus: 401,
    });
    const login = await cli('m1', loggedIn, ['login', '-u', USER, '--password-stdin', reg], PASS);
    assert.equal(login.code, 0, login.stderr);
    // The image lives in the registry only: pushed from m1, then removed there.
    img = await randomImageArchive(dir, 'privimg:1', [256 << 10]);
    image = `${reg}/privimg:1`;
    await ok('m1', ['load', '-i', img.file]);
    await ok('m1', ['tag', 'privimg:1', image]);
    await ok('m1', ['push', image], loggedIn);
    await ok('m1', ['rmi', 'privimg:1', image]);
    const denied = await cli('m2', anonymous, ['pull', image]);
    assert.notEqual(denied.code, 0, 'the registry must refuse an anonymous pull');
  });

  after(async () => {
    await registry?.stop();
    await swarm?.cleanup();
  });

  it('runs with the credentials on every node that needs them; inspect never shows them', async () => {
    const created = await createService('priv', [
      '--with-registry-auth',
      '--mode',
      'global',
      '--constraint',
      'node.hostname!=m3',
    ]);
    assert.equal(created.code, 0, created.stderr);
    // The CLI resolved the tag with the credentials (GET /distribution with X-Registry-Auth): pinned.
    assert.doesNotMatch(created.stderr, /could not be accessed/);
    const pinned = await pinnedImage('priv');
    assert.match(pinned, new RegExp(`^${image.replace(/[.]/g, '\\.')}@sha256:[a-f0-9]{64}$`));
    await runningOn('priv', ['m1', 'm2']);

    const secretBits = [PASS, Buffer.from(`${USER}:${PASS}`).toString('base64'), 'PullOptions', 'RegistryAuth'];
    const shown = [
      await ok('m1', ['service', 'inspect', 'priv']),
      await ok('m1', ['inspect', '--type', 'task', ...(await ok('m1', ['service', 'ps', '-q', 'priv'])).split('\n')]),
      (await api('/services')).body,
    ];
    for (const out of shown) {
      assert.match(out, /privimg/);
      for (const bit of secretBits) assert.ok(!out.includes(bit), `the API showed ${bit}: ${out}`);
    }
  });

  it('the digest lookup (GET /distribution) answers with the credentials, and as dockerd without', async () => {
    const auth = Buffer.from(JSON.stringify({ username: USER, password: PASS, serveraddress: reg })).toString(
      'base64url',
    );
    const withAuth = await api(`/distribution/${image}/json`, [`X-Registry-Auth: ${auth}`]);
    assert.equal(withAuth.status, 200, withAuth.body);
    const pinned = await pinnedImage('priv');
    const found = JSON.parse(withAuth.body) as { Descriptor: { digest: string }; Platforms: { os: string }[] };
    assert.equal(`${image}@${found.Descriptor.digest}`, pinned);
    assert.deepEqual(
      found.Platforms.map((p) => p.os),
      ['linux'],
    );
    // m1 holds the image (pulled with credentials), yet an anonymous caller learns nothing of it.
    const without = await api(`/distribution/${image}/json`);
    assert.equal(without.status, 401, without.body);
    assert.deepEqual(JSON.parse(without.body), { message: 'unauthorized: authentication required' });
  });

  it('a node without a task of the service gets no blob of the private image from a peer; one with a task does', async () => {
    const allowed = await peerGet('m2', 'm1', `/v1/images/${img.id}`);
    assert.equal(allowed.status, 200, allowed.body);
    const layers = (JSON.parse(allowed.body) as { layers: { digest: string }[] }).layers;
    assert.equal(layers.length, 2);
    const dataLayer = layers[1].digest;
    assert.equal((await peerGet('m2', 'm1', `/v1/blobs/${dataLayer}`)).status, 200);
    for (const p of [
      `/v1/images/${img.id}`,
      `/v1/blobs/${img.id}`,
      `/v1/blobs/${dataLayer}`,
      `/v1/blobs/${layers[0].digest}`,
    ])
      assert.equal((await peerGet('m3', 'm1', p)).status, 403, `m3 read ${p} from m1`);
    assert.match(log('m1'), /private image refused to a peer without a task for it/);
  });

  it('without --with-registry-auth a node without credentials fails the task as dockerd does', async () => {
    const created = await createService('nocreds', ['--constraint', 'node.hostname==m3']);
    assert.equal(created.code, 0, created.stderr);
    // No credentials went to the daemon: the registry refused the digest lookup, as with dockerd.
    assert.match(created.stderr, /could not be accessed on a registry to record\s+its digest/);
    const failed = await waitFor(
      'the task of nocreds failed',
      async () => (await tasks('nocreds')).find((t) => t.node === 'm3' && t.error),
      180_000,
      1000,
    );
    assert.match(failed.error, new RegExp(`No such image: ${image.replace(/[.]/g, '\\.')}`));
    // Peers holding it did not hand it over either.
    assert.notEqual((await cli('m3', anonymous, ['image', 'inspect', img.id])).code, 0);
    await ok('m1', ['service', 'rm', 'nocreds']);
  });

  it('an update without the flag keeps the credentials: the new node gets the image from its peers', async () => {
    await ok('m1', ['service', 'update', '--detach', '--constraint-rm', 'node.hostname!=m3', 'priv']);
    await runningOn('priv', ['m1', 'm2', 'm3']);
    // Pinned by digest: peers first, and m1 and m2 served m3, which now runs a task of the service.
    assert.match(log('m3'), /image fetched from peers/);
  });
});
