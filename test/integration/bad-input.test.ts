import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startDaemon, type TestDaemon } from '../helpers/daemon.js';

/** Bad input outside request bodies, answered by a real shoald in a swarm as dockerd answers it. */
let d: TestDaemon;
before(async () => {
  d = await startDaemon({ prefix: 'shtbad' });
  const init = await d.docker(['swarm', 'init', '--advertise-addr', '127.0.0.1']);
  assert.equal(init.code, 0, init.stderr);
});
after(async () => {
  await d?.destroy();
});

function call(
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; message?: string; json: unknown }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { socketPath: d.socket, path, method, headers: body === undefined ? {} : { 'Content-Type': 'application/json' } },
      (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => {
          const json = text ? (JSON.parse(text) as unknown) : undefined;
          resolve({ status: res.statusCode ?? 0, message: (json as { message?: string } | undefined)?.message, json });
        });
      },
    );
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

test('filters: null is no filter, garbage is 400 "invalid filter" on every list', async () => {
  for (const list of [
    '/containers/json',
    '/images/json',
    '/volumes',
    '/networks',
    '/services',
    '/nodes',
    '/tasks',
    '/secrets',
    '/configs',
  ]) {
    assert.equal((await call('GET', `${list}?filters=null`)).status, 200, list);
    for (const bad of ['garbage', '{"label":1}', '[1]']) {
      const r = await call('GET', `${list}?filters=${encodeURIComponent(bad)}`);
      assert.deepEqual([r.status, r.message], [400, 'invalid filter'], `${list} ${bad}`);
    }
  }
});

test('networks: dangling takes a boolean (400 otherwise, never a 500 for a network without containers)', async () => {
  const q = (v: string) => call('GET', `/networks?filters=${encodeURIComponent(JSON.stringify({ dangling: [v] }))}`);
  assert.deepEqual([(await q('maybe')).status, (await q('maybe')).message], [400, "Invalid filter 'dangling=[maybe]'"]);
  for (const v of ['true', '1', 'false', '0']) assert.equal((await q(v)).status, 200, v);
});

test('query integers: 400 for a non-integer limit or an out-of-range ?version=', async () => {
  const limit = await call('GET', '/containers/json?limit=abc');
  assert.equal(limit.status, 400);
  const info = (await call('GET', '/info')).json as { Swarm: { NodeID: string } };
  const r = await call('POST', `/nodes/${info.Swarm.NodeID}/update?version=99999999999999999999`, {
    Role: 'manager',
    Availability: 'active',
  });
  assert.equal(r.status, 400);
  assert.match(r.message ?? '', /value out of range/);
});

test('a method the path does not have is 404 "page not found", as dockerd\'s router answers', async () => {
  assert.deepEqual(
    [(await call('DELETE', '/info')).status, (await call('DELETE', '/info')).message],
    [404, 'page not found'],
  );
  assert.deepEqual(
    [(await call('PATCH', '/containers/json')).status, (await call('PATCH', '/containers/json')).message],
    [404, 'page not found'],
  );
});

test('network create: an unknown driver is 404 plugin not found; host and null 403; nothing created', async () => {
  const unknown = await call('POST', '/networks/create', { Name: 'bad-drv', Driver: 'nosuchdriver' });
  assert.deepEqual([unknown.status, unknown.message], [404, 'plugin "nosuchdriver" not found']);
  const host = await call('POST', '/networks/create', { Name: 'bad-host', Driver: 'host' });
  assert.deepEqual([host.status, host.message], [403, 'only one instance of "host" network is allowed']);
  const names = ((await call('GET', '/networks')).json as { Name: string }[]).map((n) => n.Name);
  assert.ok(!names.includes('bad-drv') && !names.includes('bad-host'), names.join(' '));
});

test('swarm init on a node in a swarm is 503 unless ForceNewCluster is exactly true; a non-boolean is 400 first', async () => {
  for (const force of [false, null]) {
    const r = await call('POST', '/swarm/init', {
      ListenAddr: '0.0.0.0:2377',
      AdvertiseAddr: '127.0.0.1',
      ForceNewCluster: force,
    });
    assert.equal(r.status, 503, JSON.stringify(force));
    assert.match(r.message ?? '', /^This node is already part of a swarm\./);
  }
  // dockerd decodes the body before it looks at the node's state: a wrong type is Go's 400.
  for (const force of ['yes', 1, {}]) {
    const r = await call('POST', '/swarm/init', {
      ListenAddr: '0.0.0.0:2377',
      AdvertiseAddr: '127.0.0.1',
      ForceNewCluster: force,
    });
    assert.equal(r.status, 400, JSON.stringify(force));
    assert.match(
      r.message ?? '',
      /^json: cannot unmarshal \w+ into Go struct field \w+\.ForceNewCluster of type bool$/,
    );
  }
  assert.equal(
    ((await call('GET', '/info')).json as { Swarm: { LocalNodeState: string } }).Swarm.LocalNodeState,
    'active',
  );
});
