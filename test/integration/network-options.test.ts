import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { apiJson } from '../helpers/engine-api.js';

// `docker network create --opt` on a local bridge: answers as Debian's dockerd 20.10 gives them
// (measured side by side): unknown options, `encrypted` included, are kept and ignored; the
// bridge driver's own options must parse (500 and libnetwork's words), and nothing is stored.
let d: TestDaemon;

before(async () => {
  d = await startDaemon({ prefix: 'shtnop' });
});
after(async () => {
  await d?.destroy();
});

const out = async (...args: string[]) => (await d.docker(args)).stdout.trim();
const fail = async (...args: string[]) => {
  const r = await d.docker(args, { allowFail: true });
  assert.notEqual(r.code, 0, `docker ${args.join(' ')} should fail`);
  return r.stderr.trim();
};

const createRaw = (body: unknown) =>
  apiJson<{ message?: string; Id?: string }>(d.socket, 'POST', '/v1.41/networks/create', body);

test('--opt encrypted and unknown options on a bridge are kept and ignored, as dockerd does', async () => {
  await out('network', 'create', '-d', 'bridge', '--opt', 'encrypted', 'nop-enc');
  await out(
    'network',
    'create',
    '--opt',
    'foo=bar',
    '--opt',
    'com.docker.network.container_iface_prefix=abc',
    'nop-foo',
  );
  assert.equal(await out('network', 'inspect', 'nop-enc', '--format', '{{json .Options}}'), '{"encrypted":""}');
  assert.deepEqual(JSON.parse(await out('network', 'inspect', 'nop-foo', '--format', '{{json .Options}}')), {
    foo: 'bar',
    'com.docker.network.container_iface_prefix': 'abc',
  });
  assert.equal(await out('network', 'inspect', 'nop-enc', '--format', '{{.Driver}} {{.Scope}}'), 'bridge local');
  await out('network', 'rm', 'nop-enc', 'nop-foo');
});

test("bridge options that do not parse: dockerd's 500 and message, nothing stored", async () => {
  const cases: [string, string][] = [
    [
      'com.docker.network.driver.mtu=abc',
      'failed to parse com.docker.network.driver.mtu value: abc (strconv.Atoi: parsing "abc": invalid syntax)',
    ],
    [
      'com.docker.network.driver.mtu=99999999999999999999',
      'failed to parse com.docker.network.driver.mtu value: 99999999999999999999 (strconv.Atoi: parsing "99999999999999999999": value out of range)',
    ],
    ['com.docker.network.driver.mtu=-5', 'invalid MTU number: -5'],
    [
      'com.docker.network.bridge.enable_icc=maybe',
      'failed to parse com.docker.network.bridge.enable_icc value: maybe (strconv.ParseBool: parsing "maybe": invalid syntax)',
    ],
    [
      'com.docker.network.bridge.enable_ip_masquerade=yes',
      'failed to parse com.docker.network.bridge.enable_ip_masquerade value: yes (strconv.ParseBool: parsing "yes": invalid syntax)',
    ],
    [
      'com.docker.network.bridge.inhibit_ipv4=2',
      'failed to parse com.docker.network.bridge.inhibit_ipv4 value: 2 (strconv.ParseBool: parsing "2": invalid syntax)',
    ],
    [
      'com.docker.network.enable_ipv6=maybe',
      'failed to parse com.docker.network.enable_ipv6 value: maybe (strconv.ParseBool: parsing "maybe": invalid syntax)',
    ],
    [
      'com.docker.network.bridge.host_binding_ipv4=notip',
      'failed to parse com.docker.network.bridge.host_binding_ipv4 value: notip (nil ip)',
    ],
  ];
  for (const [opt, message] of cases) {
    assert.equal(await fail('network', 'create', '--opt', opt, 'nop-bad'), `Error response from daemon: ${message}`);
    const [label, value] = opt.split('=');
    const raw = await createRaw({ Name: 'nop-bad', Driver: 'bridge', Options: { [label]: value } });
    assert.deepEqual(raw, { status: 500, body: { message } }, opt);
  }
  assert.doesNotMatch(await out('network', 'ls', '--format', '{{.Name}}'), /nop-bad/, 'nothing stored');
  // What Go parses is accepted: its booleans, a signed MTU, an IPv6 binding address.
  await out(
    'network',
    'create',
    '--opt',
    'com.docker.network.bridge.enable_icc=T',
    '--opt',
    'com.docker.network.bridge.enable_ip_masquerade=1',
    '--opt',
    'com.docker.network.driver.mtu=+1500',
    '--opt',
    'com.docker.network.bridge.host_binding_ipv4=::1',
    'nop-good',
  );
  await out('network', 'rm', 'nop-good');
});

test('--scope swarm outside a swarm: dockerd’s 403, nothing stored', async () => {
  assert.equal(
    await fail('network', 'create', '-d', 'bridge', '--scope', 'swarm', 'nop-sw'),
    'Error response from daemon: cannot create a swarm scoped network when swarm is not active',
  );
  assert.equal((await createRaw({ Name: 'nop-sw', Driver: 'bridge', Scope: 'swarm' })).status, 403);
  assert.doesNotMatch(await out('network', 'ls', '--format', '{{.Name}}'), /nop-sw/, 'nothing stored');
});
