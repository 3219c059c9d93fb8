import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { busyboxRootfsTar } from '../helpers/busybox.js';
import { waitFor } from '../helpers/process.js';
import { run } from '../../src/util/run.js';
import { MAX_JSON_BODY } from '../../src/api/decode/index.js';

/**
 * Request bodies as dockerd decodes them, against one real shoald in a swarm: wrong-typed
 * fields are refused with Go's message and nothing is stored (the list endpoints every user
 * reads keep working), docker-py's lowercase keys act, and JSON bodies have a size limit that
 * raw uploads do not. Needs root: network namespaces, etcd, runc, conmon.
 */

let d: TestDaemon;
const IMG = 'shtbodybox';

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json: () => Record<string, unknown>;
}

/**
 * A raw request over the daemon's socket, as hand-written clients send them; a `body` function
 * streams the body itself (and ends the request).
 */
function api(
  method: string,
  p: string,
  body?: string | Buffer | ((req: http.ClientRequest) => void),
  headers: Record<string, string> = { 'Content-Type': 'application/json' },
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: d.socket, method, path: `/v1.41${p}`, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          text,
          json: () => JSON.parse(text) as Record<string, unknown>,
        });
      });
    });
    // The daemon may close after answering an oversized body before it was all sent.
    req.on('error', (e: NodeJS.ErrnoException) =>
      e.code === 'EPIPE' || e.code === 'ECONNRESET' ? undefined : reject(e),
    );
    if (typeof body === 'function') return body(req);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

const docker = async (...args: string[]) => {
  const r = await d.docker(args, { allowFail: true });
  assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
};

/** Every list a user reads after someone else's bad request. */
async function listsStillWork(): Promise<void> {
  await docker('node', 'ls');
  await docker('service', 'ls');
  await docker('volume', 'ls');
  await docker('system', 'df');
  await docker('ps', '-a');
  await docker('network', 'ls');
  await docker('secret', 'ls');
  await docker('config', 'ls');
}

before(async () => {
  d = await startDaemon({ prefix: 'shtbody' });
  await docker('swarm', 'init', '--advertise-addr', '127.0.0.1');
  const tar = await busyboxRootfsTar(d.dir);
  await docker('import', '-c', 'CMD ["sh"]', tar, IMG);
});
after(async () => {
  await d?.destroy();
});

test("wrong-typed fields get 400 with Go's message, nothing is stored, every list still answers", async () => {
  const nodeId = await docker('info', '--format', '{{.Swarm.NodeID}}');
  const node = JSON.parse(await docker('node', 'inspect', nodeId))[0];
  const cases: { what: string; method: string; path: string; body: string; message: string }[] = [
    {
      what: 'node label as an object',
      method: 'POST',
      path: `/nodes/${nodeId}/update?version=${node.Version.Index}`,
      body: JSON.stringify({ Role: 'manager', Availability: 'active', Labels: { zone: { a: 1 } } }),
      message: 'json: cannot unmarshal object into Go struct field NodeSpec.Labels of type string',
    },
    {
      what: 'NanoCPUs as an object',
      method: 'POST',
      path: '/services/create',
      body: JSON.stringify({
        Name: 'badcpu',
        TaskTemplate: { ContainerSpec: { Image: IMG }, Resources: { Limits: { NanoCPUs: { x: 1 } } } },
      }),
      message:
        'json: cannot unmarshal object into Go struct field Limit.TaskTemplate.Resources.Limits.NanoCPUs of type int64',
    },
    {
      what: 'a volume with nested labels',
      method: 'POST',
      path: '/volumes/create',
      body: JSON.stringify({ Name: 'badvol', Labels: { a: { b: 'c' } } }),
      message: 'json: cannot unmarshal object into Go struct field VolumeCreateBody.Labels of type string',
    },
    {
      what: '"Binds": 1.5',
      method: 'POST',
      path: '/containers/create?name=badbinds',
      body: JSON.stringify({ Image: IMG, HostConfig: { Binds: 1.5 } }),
      message:
        'invalid JSON: json: cannot unmarshal number into Go struct field HostConfig.HostConfig.Binds of type []string',
    },
    {
      what: 'a non-boolean ForceNewCluster on a node in a swarm',
      method: 'POST',
      path: '/swarm/init',
      body: JSON.stringify({ ListenAddr: '0.0.0.0:2377', ForceNewCluster: 'yes' }),
      message: 'json: cannot unmarshal string into Go struct field InitRequest.ForceNewCluster of type bool',
    },
    {
      what: 'replicas out of range',
      method: 'POST',
      path: '/services/create',
      body: JSON.stringify({
        Name: 'badreplicas',
        TaskTemplate: { ContainerSpec: { Image: IMG } },
        Mode: { Replicated: { Replicas: -1 } },
      }),
      message:
        'json: cannot unmarshal number -1 into Go struct field ReplicatedService.Mode.Replicated.Replicas of type uint64',
    },
    {
      what: 'nesting far past the depth limit',
      method: 'POST',
      path: '/volumes/create',
      body: '{"Name":"deepvol","Labels":' + '['.repeat(20_000) + ']'.repeat(20_000) + '}',
      message: "invalid character '[' exceeded max depth",
    },
  ];
  for (const c of cases) {
    const r = await api(c.method, c.path, c.body);
    assert.equal(r.status, 400, `${c.what}: ${r.status} ${r.text}`);
    assert.equal(r.headers['content-type'], 'application/json', c.what);
    assert.deepEqual(r.json(), { message: c.message }, c.what);
  }
  const after = JSON.parse(await docker('node', 'inspect', nodeId))[0];
  assert.equal(after.Version.Index, node.Version.Index, 'the node was not written');
  assert.deepEqual(after.Spec.Labels ?? {}, node.Spec.Labels ?? {});
  assert.equal(await docker('service', 'ls', '-q'), '');
  assert.doesNotMatch(await docker('volume', 'ls', '-q'), /badvol|deepvol/);
  assert.doesNotMatch(await docker('ps', '-a', '--format', '{{.Names}}'), /badbinds/);
  await listsStillWork();
});

test(
  "docker-py's lowercase Mode key scales a service (no roll of the running task)",
  { timeout: 120_000 },
  async () => {
    await docker('service', 'create', '--detach', '--name', 'lcscale', '--replicas', '1', IMG, 'sleep', '600');
    const running = async () =>
      (await docker('service', 'ps', '--filter', 'desired-state=running', '--format', '{{.ID}}', 'lcscale'))
        .split('\n')
        .filter(Boolean);
    const first = await waitFor(
      'one task of lcscale',
      async () => ((await running()).length === 1 ? (await running())[0] : undefined),
      60_000,
      300,
    );
    // docker-py's scale(): the service as GET /services/{id} shows it (no inserted defaults) …
    const svc = (await api('GET', '/services/lcscale')).json() as {
      ID: string;
      Version: { Index: number };
      Spec: Record<string, unknown>;
    };
    // … sent back with its ServiceMode, which is {"replicated": {"Replicas": 3}}.
    const spec = { ...svc.Spec, Mode: { replicated: { Replicas: 3 } } };
    const r = await api('POST', `/services/${svc.ID}/update?version=${svc.Version.Index}`, JSON.stringify(spec));
    assert.equal(r.status, 200, r.text);
    const now = JSON.parse(await docker('service', 'inspect', 'lcscale'))[0];
    assert.deepEqual(now.Spec.Mode, { Replicated: { Replicas: 3 } });
    const tasks = await waitFor(
      'three tasks of lcscale',
      async () => {
        const t = await running();
        return t.length === 3 ? t : undefined;
      },
      60_000,
      300,
    );
    const history = await docker(
      'service',
      'ps',
      '--no-trunc',
      '--format',
      '{{.ID}} {{.DesiredState}} {{.CurrentState}} {{.Error}}',
      'lcscale',
    );
    assert.ok(
      tasks.includes(first),
      `the first task (${first}) kept running: a scale, not a rolling update\n${history}`,
    );
    await docker('service', 'rm', 'lcscale');
  },
);

test('hand-written clients: lowercase keys and extra fields act as in dockerd; map keys stay as sent', async () => {
  let r = await api(
    'POST',
    '/volumes/create',
    JSON.stringify({ name: 'lcvol', labels: { 'Com.Example.Tier': 'DB' }, DRIVER: 'local', unknownField: { x: [1] } }),
  );
  assert.equal(r.status, 201, r.text);
  const v = JSON.parse(await docker('volume', 'inspect', 'lcvol'))[0];
  assert.deepEqual(v.Labels, { 'Com.Example.Tier': 'DB' });
  r = await api(
    'POST',
    '/networks/create',
    JSON.stringify({ name: 'lcnet', driver: 'overlay', attachable: true, labels: { Keep: 'Case' }, Bogus: true }),
  );
  assert.equal(r.status, 201, r.text);
  const n = JSON.parse(await docker('network', 'inspect', 'lcnet'))[0];
  assert.equal(n.Driver, 'overlay');
  assert.equal(n.Attachable, true);
  assert.deepEqual(n.Labels, { Keep: 'Case' });
  await docker('network', 'rm', 'lcnet');
  await docker('volume', 'rm', 'lcvol');
  // An empty body where dockerd needs one.
  r = await api('POST', '/volumes/create');
  assert.equal(r.status, 400);
  assert.deepEqual(r.json(), { message: 'got EOF while reading request body' });
});

test(
  `JSON bodies over ${MAX_JSON_BODY} bytes get 413 (with or without Content-Length); raw uploads have no limit`,
  { timeout: 120_000 },
  async () => {
    const big = JSON.stringify({ Name: 'bigvol', Labels: { pad: 'x'.repeat(MAX_JSON_BODY) } });
    let r = await api('POST', '/volumes/create', big, {
      'Content-Type': 'application/json',
      'Content-Length': String(Buffer.byteLength(big)),
    });
    assert.equal(r.status, 413, r.text);
    assert.match(String(r.json().message), /request body too large/);
    // Chunked: no length to check first, the limit stops the read.
    const chunked = (req: http.ClientRequest) => {
      const chunk = Buffer.alloc(256 * 1024, 0x20);
      let sent = 0;
      const pump = () => {
        // 64 MiB would follow: the daemon answers long before.
        while (sent < 64 * 1024 * 1024) {
          sent += chunk.length;
          if (!req.write(chunk)) return void req.once('drain', pump);
        }
        req.end();
      };
      req.write('{"Name":"chunked","Labels":{"pad":"');
      pump();
    };
    r = await api('POST', '/volumes/create', chunked, {
      'Content-Type': 'application/json',
      'Transfer-Encoding': 'chunked',
    });
    assert.equal(r.status, 413, r.text);
    assert.doesNotMatch(await docker('volume', 'ls', '-q'), /bigvol|chunked/);

    // `docker import` of a rootfs with 6 MiB of data: a raw upload, streamed, no JSON limit.
    const tar = path.join(d.dir, 'big-rootfs.tar');
    fs.copyFileSync(await busyboxRootfsTar(d.dir), tar);
    const extra = fs.mkdtempSync(path.join(d.dir, 'big-'));
    fs.writeFileSync(path.join(extra, 'blob.bin'), crypto.randomBytes(6 * 1024 * 1024));
    await run('tar', ['-C', extra, '-rf', tar, './blob.bin']);
    assert.ok(fs.statSync(tar).size > MAX_JSON_BODY);
    await docker('import', tar, 'shtbodybig');
    const size = Number(await docker('image', 'inspect', '--format', '{{.Size}}', 'shtbodybig'));
    assert.ok(size > 6 * 1024 * 1024, `image size ${size}`);
    await listsStillWork();
  },
);

test("Content-Type as dockerd's CheckForJSON: a body must come as application/json on the routes that check, others and uploads do not", async () => {
  const body = JSON.stringify({ Name: 'ctvol' });
  const refused = "must be 'application/json'";
  // Present and not JSON: 400 in dockerd's words, nothing made.
  let r = await api('POST', '/volumes/create', body, { 'Content-Type': 'text/plain' });
  assert.equal(r.status, 400, r.text);
  assert.equal(r.json().message, "Content-Type specified (text/plain) must be 'application/json'");
  r = await api('POST', '/networks/create', JSON.stringify({ Name: 'ctnet' }), {
    'Content-Type': 'application/x-www-form-urlencoded',
  });
  assert.equal(r.status, 400, r.text);
  assert.match(String(r.json().message), new RegExp(refused));
  r = await api('POST', `/containers/create?name=ctbox`, JSON.stringify({ Image: IMG, Cmd: ['true'] }), {
    'Content-Type': 'application/jsonx',
  });
  assert.equal(r.status, 400, r.text);
  // Absent with a body: Go's ContentLength is not 0, so dockerd 20.10 refuses it too.
  r = await api('POST', '/volumes/create', body, { 'Content-Length': String(Buffer.byteLength(body)) });
  assert.equal(r.status, 400, r.text);
  assert.equal(r.json().message, "Content-Type specified () must be 'application/json'");
  assert.doesNotMatch(await docker('volume', 'ls', '-q'), /ctvol/);
  assert.doesNotMatch(await docker('network', 'ls', '--format', '{{.Name}}'), /ctnet/);
  assert.doesNotMatch(await docker('ps', '-a', '--format', '{{.Names}}'), /ctbox/);

  // Absent without a body passes the check (the decoder then wants a body); parameters are fine.
  r = await api('POST', '/networks/create', undefined, {});
  assert.equal(r.status, 400, r.text);
  assert.equal(r.json().message, 'got EOF while reading request body');
  r = await api('POST', '/volumes/create', body, { 'Content-Type': 'Application/JSON; charset=utf-8' });
  assert.equal(r.status, 201, r.text);
  await docker('volume', 'rm', 'ctvol');

  // dockerd's swarm routes do not check: a secret sent as text/plain is created.
  r = await api(
    'POST',
    '/secrets/create',
    JSON.stringify({ Name: 'ctsecret', Data: Buffer.from('x').toString('base64') }),
    { 'Content-Type': 'text/plain' },
  );
  assert.equal(r.status, 201, r.text);
  await docker('secret', 'rm', 'ctsecret');
  await listsStillWork();
});
