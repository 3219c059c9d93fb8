// The image server and the peer fetch in-process, over real mutual TLS on loopback with node
// certificates from a swarm root CA: what a peer serves, who may read it, and what a receiver
// refuses. Needs root (layers are unpacked with owners, devices and xattrs).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { AddressInfo } from 'node:net';
import { ImageStore } from '../../src/engine/images/store.js';
import { loadImages } from '../../src/engine/images/archive.js';
import { ProgressStream } from '../../src/engine/images/progress.js';
import { ImagePeerServer, peerLayers, type PeerTls } from '../../src/engine/images/peer-server.js';
import { fetchImageFromPeers, type ImagePeer } from '../../src/engine/images/peer-fetch.js';
import { createRootCA, signNodeCert, type RootCAMaterial } from '../../src/manager/ca/root-ca.js';
import { createCsr, generateKeyPair, privateKeyToPem } from '../../src/cluster/pki.js';
import { createLogger } from '../../src/util/log.js';
import { TEST_ROOT } from '../helpers/daemon.js';
import { uniqueName } from '../helpers/netns.js';
import { waitFor } from '../helpers/process.js';
import { randomImageArchive, type ImageArchive } from '../helpers/image-archive.js';

const dir = path.join(TEST_ROOT, uniqueName('shtpeers'));
const log = createLogger('image-peers-test', 'silent');
const servers: ImagePeerServer[] = [];
let ca: RootCAMaterial;
let img: ImageArchive;

async function nodeTls(root: RootCAMaterial, nodeId: string, trust = root): Promise<PeerTls> {
  const keys = await generateKeyPair();
  const cert = await signNodeCert(root, { csrPem: await createCsr(keys), nodeId, role: 'worker', clusterId: 'c1' });
  return {
    ca: Buffer.from(trust.certPem),
    cert: Buffer.from(cert),
    key: Buffer.from(await privateKeyToPem(keys.privateKey)),
  };
}

async function openStore(name: string): Promise<ImageStore> {
  const root = path.join(dir, name);
  const cfg = {
    dataRoot: path.join(root, 'data'),
    execRoot: path.join(root, 'exec'),
    insecureRegistries: [],
    labels: {},
    hostname: name,
    host: '',
  };
  return ImageStore.open(cfg, log);
}

/** A store holding `img`, served as node `nodeId`; returns the peer to dial. */
/** Overwrites ten bytes in each layer blob of the test image in `store`: its digests no longer match. */
function corruptLayers(store: ImageStore): void {
  for (const d of img.diffIds) {
    const fd = fs.openSync(store.blobs.path(d), 'r+');
    fs.writeSync(fd, Buffer.from('corrupted!'), 0, 10, 1024);
    fs.closeSync(fd);
  }
}

async function servingPeer(nodeId: string): Promise<{ peer: ImagePeer; store: ImageStore; server: ImagePeerServer }> {
  const store = await openStore(nodeId);
  const sink = new Writable({ write: (_c, _e, cb) => cb() });
  await loadImages(store, fs.createReadStream(img.file), new ProgressStream(() => sink));
  const server = new ImagePeerServer(store, log);
  servers.push(server);
  const port = await server.listen(await nodeTls(ca, nodeId), 0);
  return { peer: { nodeId, addr: `127.0.0.1:${port}` }, store, server };
}

const tmpFiles = (s: ImageStore) => fs.readdirSync(s.blobs.tmpDir);

before(async () => {
  fs.mkdirSync(dir, { recursive: true });
  ca = await createRootCA();
  img = await randomImageArchive(dir, 'peers:1', [300_000, 200_000]);
});
after(() => {
  for (const s of servers) s.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a node fetches an image from a peer: config and every layer, checked, whole', async () => {
  const a = await servingPeer('nodeA');
  const b = await openStore('fetchB');
  const r = await fetchImageFromPeers(b, img.id, [a.peer], await nodeTls(ca, 'nodeB'), log);
  assert.equal(b.get(img.id)?.id, img.id);
  for (const d of img.diffIds) assert.ok(b.layers.has(d));
  assert.equal(fs.readFileSync(path.join(b.layers.diffDir(img.diffIds[1]), 'data/0')).length, 300_000);
  assert.ok((r.bytesFrom.get('nodeA') ?? 0) > 500_000);
  assert.ok(a.server.bytesServed > 500_000);
  assert.deepEqual(r.refused, []);
  assert.deepEqual(tmpFiles(b), []);
});

test('a process outside the swarm reads nothing: no certificate, or one from another CA, is refused', async () => {
  const a = await servingPeer('nodeA2');
  const port = Number(a.peer.addr.split(':')[1]);
  const attempt = (tls: Partial<PeerTls>) =>
    new Promise<string>((resolve) => {
      const req = https.get(
        { host: '127.0.0.1', port, path: `/v1/blobs/${img.id}`, rejectUnauthorized: false, ...tls, agent: false },
        (res) => {
          res.resume();
          resolve(`status ${res.statusCode}`);
        },
      );
      req.on('error', (e) => resolve(`error ${e.message}`));
    });
  assert.match(await attempt({}), /^error /);
  const other = await createRootCA();
  const stranger = await nodeTls(other, 'nodeX');
  assert.match(await attempt({ cert: stranger.cert, key: stranger.key }), /^error /);
  // A swarm node's certificate reads it.
  assert.equal(await attempt(await nodeTls(ca, 'nodeY')), 'status 200');
});

test('the peer must be the node the managers named (its certificate CN)', async () => {
  const a = await servingPeer('nodeA3');
  const b = await openStore('fetchB3');
  await assert.rejects(
    fetchImageFromPeers(b, img.id, [{ nodeId: 'someoneElse', addr: a.peer.addr }], await nodeTls(ca, 'nodeB3'), log),
    /is not node someoneElse/,
  );
  assert.equal(b.get(img.id), undefined);
});

test('a corrupt blob is refused and fetched from the next peer; nothing of it stays', async () => {
  const bad = await servingPeer('nodeBad');
  const good = await servingPeer('nodeGood');
  corruptLayers(bad.store);
  const b = await openStore('fetchB4');
  const r = await fetchImageFromPeers(b, img.id, [bad.peer, good.peer], await nodeTls(ca, 'nodeB4'), log);
  assert.equal(b.get(img.id)?.id, img.id);
  const refused = r.refused.filter((x) => x.nodeId === 'nodeBad');
  assert.ok(refused.length >= 1, JSON.stringify(r.refused));
  assert.ok(
    refused.every((x) => /digest mismatch/.test(x.reason)),
    JSON.stringify(refused),
  );
  for (const d of img.diffIds) assert.ok(b.layers.has(d));
  assert.deepEqual(tmpFiles(b), []);
});

test('when no peer can give it the fetch fails and the store holds no part of the image', async () => {
  const bad = await servingPeer('nodeBad2');
  corruptLayers(bad.store);
  const b = await openStore('fetchB5');
  const gone: ImagePeer = { nodeId: 'nodeGone', addr: '127.0.0.1:1' };
  await assert.rejects(
    fetchImageFromPeers(b, img.id, [bad.peer, gone], await nodeTls(ca, 'nodeB5'), log),
    /digest mismatch/,
  );
  assert.equal(b.get(img.id), undefined);
  for (const d of img.diffIds) assert.equal(b.blobs.has(d), false);
  assert.deepEqual(tmpFiles(b), []);
});

test('a private image fetched from a peer is private as the fetch returns: no report can call it public', async () => {
  const a = await servingPeer('nodeA7');
  const b = await openStore('fetchB7');
  // The node reports its images as the fetch ends (image-sharing.ts): the flag must be there by then.
  const privateAtEnd = await fetchImageFromPeers(b, img.id, [a.peer], await nodeTls(ca, 'nodeB7'), log, {
    private: true,
  }).then(() => b.get(img.id)?.record.private);
  assert.equal(privateAtEnd, true);
});

test('a fetch asks again who holds the image: a node that got it meanwhile serves layers too', async () => {
  const a = await servingPeer('nodeA6');
  const b = await servingPeer('nodeB6');
  const c = await openStore('fetchC6');
  let asked = 0;
  let changes = 0;
  // The node reports its images when its store changes: the new image makes it a holder at once.
  c.onChange(() => changes++);
  // The managers first named A only; B finished its own fetch since and is named now.
  const refresh = () => {
    asked++;
    return Promise.resolve([a.peer, b.peer]);
  };
  const r = await fetchImageFromPeers(c, img.id, [a.peer], await nodeTls(ca, 'nodeC6'), log, {
    refresh,
    refreshMs: 0,
  });
  assert.equal(c.get(img.id)?.id, img.id);
  assert.ok(asked >= 1);
  assert.ok(changes >= 1, 'the store told of the new image');
  // Both layers start at once, each from the holder with fewer transfers under way: one from each.
  assert.ok((r.bytesFrom.get('nodeB6') ?? 0) > 100_000, JSON.stringify([...r.bytesFrom]));
  assert.ok((r.bytesFrom.get('nodeA6') ?? 0) > 100_000, JSON.stringify([...r.bytesFrom]));
  assert.ok(b.server.bytesServed > 100_000);
  assert.deepEqual(tmpFiles(c), []);
});

test('a holder that cannot be asked again keeps the fetch going with the holders it knew', async () => {
  const a = await servingPeer('nodeA7');
  const c = await openStore('fetchC7');
  const r = await fetchImageFromPeers(c, img.id, [a.peer], await nodeTls(ca, 'nodeC7'), log, {
    refresh: () => Promise.reject(new Error('managers unreachable')),
    refreshMs: 0,
  });
  assert.equal(c.get(img.id)?.id, img.id);
  assert.ok((r.bytesFrom.get('nodeA7') ?? 0) > 500_000);
});

test('a node still fetching gives the layer blobs it already has; one it lacks yet is no fault', async () => {
  // A holds the whole image but its two data layers are corrupt; P, still fetching, has those two.
  const a = await servingPeer('nodeA8');
  for (const d of img.diffIds.slice(1)) {
    const fd = fs.openSync(a.store.blobs.path(d), 'r+');
    fs.writeSync(fd, Buffer.from('corrupted!'), 0, 10, 1024);
    fs.closeSync(fd);
  }
  const p = await servingPeer('nodeP8');
  fs.rmSync(p.store.blobs.path(img.diffIds[0]));
  const c = await openStore('fetchC8');
  const r = await fetchImageFromPeers(c, img.id, [a.peer], await nodeTls(ca, 'nodeC8'), log, {
    refresh: () => Promise.resolve([a.peer, { ...p.peer, partial: true }]),
    refreshMs: 0,
  });
  assert.equal(c.get(img.id)?.id, img.id);
  assert.ok((r.bytesFrom.get('nodeP8') ?? 0) >= 500_000, JSON.stringify([...r.bytesFrom]));
  assert.deepEqual(
    r.refused.filter((x) => x.nodeId === 'nodeP8'),
    [],
  );
  assert.deepEqual(tmpFiles(c), []);
});

/** The status of GET `urlPath` on a peer server at `port`, asked as the node of `tls`. */
function statusAs(port: number, urlPath: string, tls: PeerTls): Promise<number | undefined> {
  return new Promise((resolve) => {
    const req = https.get(
      { host: '127.0.0.1', port, path: urlPath, ...tls, checkServerIdentity: () => undefined, agent: false },
      (res) => {
        res.resume();
        resolve(res.statusCode);
      },
    );
    req.on('error', () => resolve(undefined));
  });
}

test('layers of an image not yet whole go out only while the node fetches it as a public image', async () => {
  const a = await servingPeer('nodeA9');
  // A peer that serves A's image but holds its last layer back until released.
  const held = img.diffIds[img.diffIds.length - 1];
  let release = () => {};
  const released = new Promise<void>((r) => (release = r));
  const stall = https.createServer(
    { ...(await nodeTls(ca, 'nodeS9')), requestCert: true, rejectUnauthorized: true },
    (req, res) => {
      const m = /^\/v1\/(images|blobs)\/(sha256:[a-f0-9]{64})$/.exec(req.url ?? '');
      if (!m) res.writeHead(404).end();
      else if (m[1] === 'images') res.end(JSON.stringify({ layers: peerLayers(a.store, m[2]) }));
      else if (m[2] === held) released.then(() => res.destroy()).catch(() => undefined);
      else pipeline(a.store.blobs.readStream(m[2]), res).catch(() => undefined);
    },
  );
  await new Promise<void>((r) => stall.listen(0, '127.0.0.1', r));
  try {
    const p = await openStore('fetchP9');
    const fetching = new Set([img.id]);
    const server = new ImagePeerServer(p, log, undefined, () => fetching);
    servers.push(server);
    const port = await server.listen(await nodeTls(ca, 'nodeP9'), 0);
    const stallPeer = { nodeId: 'nodeS9', addr: `127.0.0.1:${(stall.address() as AddressInfo).port}` };
    const fetch = fetchImageFromPeers(p, img.id, [stallPeer], await nodeTls(ca, 'nodeP9f'), log);
    const first = img.diffIds[0];
    await waitFor('the first layer fetched', async () => p.layers.has(first), 30_000, 20);
    const q = await nodeTls(ca, 'nodeQ9');
    assert.equal(await statusAs(port, `/v1/blobs/${first}`, q), 200);
    assert.equal(await statusAs(port, `/v1/blobs/${img.id}`, q), 200);
    // Not (or no longer) a public fetch: the same blobs go to nobody.
    fetching.clear();
    assert.equal(await statusAs(port, `/v1/blobs/${first}`, q), 403);
    assert.equal(await statusAs(port, `/v1/blobs/${img.id}`, q), 403);
    release();
    await assert.rejects(fetch);
  } finally {
    release();
    stall.close();
    stall.closeAllConnections();
  }
});
