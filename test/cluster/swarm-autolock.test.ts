import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createTestNet, type TestNet } from '../helpers/testnet.js';
import { startDaemon, type TestDaemon } from '../helpers/daemon.js';

// Autolock on one manager with the real CLI: the key sealed at rest, a restart locked until unlocked.
const LOCKED =
  'Error response from daemon: Swarm is encrypted and needs to be unlocked before it can be used. Please use "docker swarm unlock" to unlock it.';

describe('swarm autolock', () => {
  let net: TestNet;
  let mgr: TestDaemon;
  let key = '';
  const ok = async (args: string[], input?: string) => (await mgr.docker(args, { input })).stdout;
  const fail = async (args: string[], input?: string) => {
    const r = await mgr.docker(args, { allowFail: true, input });
    assert.notEqual(r.code, 0, `docker ${args.join(' ')} should fail`);
    return r.stderr.trim();
  };
  const state = async () => (await ok(['info', '--format', '{{.Swarm.LocalNodeState}}'])).trim();
  const certs = () => path.join(mgr.dataRoot, 'swarm/certificates');

  before(async () => {
    net = await createTestNet(1);
    mgr = await startDaemon({ ns: net.nodes[0].ns, prefix: 'swl' });
  });

  after(async () => {
    await mgr?.destroy();
    await net?.destroy();
  });

  test('swarm init --autolock prints the unlock key, which unlock-key -q repeats', async () => {
    const out = await ok(['swarm', 'init', '--autolock', '--advertise-addr', net.nodes[0].ip]);
    const m =
      /To unlock a swarm manager after it restarts, run the `docker swarm unlock`\ncommand and provide the following key:\n\n {4}(SWMKEY-1-[A-Za-z0-9+/]{43})\n/.exec(
        out,
      );
    assert.ok(m, out);
    key = m[1];
    assert.equal((await ok(['swarm', 'unlock-key', '-q'])).trim(), key);
    assert.equal(
      (await ok(['info', '--format', '{{.Swarm.Cluster.Spec.EncryptionConfig.AutoLockManagers}}'])).trim(),
      'true',
    );
    assert.equal(await fail(['swarm', 'unlock'], key + '\n'), 'Error: swarm is not locked');
  });

  test('after a crash the manager is locked: the TLS key only sealed, the API 503, info "locked"', async () => {
    await mgr.kill9();
    await mgr.start();
    assert.equal(await state(), 'locked');
    assert.equal(fs.existsSync(path.join(certs(), 'swarm-node.key')), false);
    assert.match(
      fs.readFileSync(path.join(certs(), 'swarm-node.key.locked'), 'utf8'),
      /^-----BEGIN ENCRYPTED PRIVATE KEY-----\n/,
    );
    assert.match(fs.readFileSync(path.join(certs(), 'swarm-node.dek'), 'utf8'), /^sealed:dek1:/);
    // etcd's files (WAL, snapshots, bolt db) hold the CA keys and the unlock key only sealed.
    const etcdFiles = fs
      .readdirSync(path.join(mgr.dataRoot, 'swarm/etcd'), { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile());
    assert.ok(etcdFiles.length > 0);
    for (const e of etcdFiles)
      assert.equal(fs.readFileSync(path.join(e.parentPath, e.name)).includes('PRIVATE KEY'), false, e.name);
    assert.equal(await fail(['node', 'ls']), LOCKED);
    assert.equal(await fail(['swarm', 'unlock-key']), `could not fetch unlock key: ${LOCKED}`);
  });

  test('docker swarm unlock refuses a wrong key and accepts the right one from stdin', async () => {
    assert.equal(
      await fail(['swarm', 'unlock'], 'SWMKEY-1-' + 'A'.repeat(43) + '\n'),
      'Error response from daemon: swarm could not be unlocked: invalid key provided',
    );
    assert.equal(await fail(['swarm', 'unlock'], 'not-a-key\n'), 'Error response from daemon: invalid key string');
    assert.equal(await state(), 'locked');
    await ok(['swarm', 'unlock'], key + '\n');
    assert.equal(await state(), 'active');
    assert.match(await ok(['node', 'ls', '--format', '{{.ManagerStatus}}']), /^Leader\n$/);
  });

  test('unlock-key --rotate gives a new key; only the new one unlocks after a restart', async () => {
    const out = await ok(['swarm', 'unlock-key', '--rotate']);
    const next = /(SWMKEY-1-[A-Za-z0-9+/]{43})/.exec(out)?.[1];
    assert.ok(next && next !== key, out);
    assert.match(out, /^Successfully rotated manager unlock key\./);
    await mgr.stop();
    await mgr.start();
    assert.equal(await state(), 'locked');
    assert.equal(
      await fail(['swarm', 'unlock'], key + '\n'),
      'Error response from daemon: swarm could not be unlocked: invalid key provided',
    );
    await ok(['swarm', 'unlock'], next + '\n');
    assert.equal(await state(), 'active');
    key = next;
  });

  test('swarm update --autolock=false: no key any more, and a restart comes back unlocked', async () => {
    await ok(['swarm', 'update', '--autolock=false']);
    assert.equal(await fail(['swarm', 'unlock-key']), 'no unlock key is set');
    assert.equal(fs.existsSync(path.join(certs(), 'swarm-node.key.locked')), false);
    await mgr.stop();
    await mgr.start();
    assert.equal(await state(), 'active');
    assert.match(await ok(['node', 'ls', '--format', '{{.ManagerStatus}}']), /^Leader\n$/);
    const on = await ok(['swarm', 'update', '--autolock=true']);
    assert.match(on, /SWMKEY-1-[A-Za-z0-9+/]{43}/);
    assert.ok(fs.existsSync(path.join(certs(), 'swarm-node.key.locked')));
  });
});
