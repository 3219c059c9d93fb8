import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type * as grpc from '@grpc/grpc-js';
import { EtcdStore, objectKey } from '../../src/manager/store/etcd-store.js';
import { imageIndexHandlers } from '../../src/manager/dispatcher/image-index.js';
import { removeNode } from '../../src/manager/control/nodes.js';
import type { FindImageRequest, FindImageResponse, ReportImagesRequest } from '../../src/cluster/rpc.js';
import type { NodeImageShare } from '../../src/cluster/types.js';
import { createLogger } from '../../src/util/log.js';
import { startTestEtcd, type TestEtcd } from '../helpers/etcd.js';
import { makeNode, until } from '../helpers/swarm-fixtures.js';

// The managers' image index on the real store (etcd): where a node's image report is kept.
const log = createLogger('test', 'warn');
const IMAGE = `sha256:${'a'.repeat(64)}`;
let etcd: TestEtcd;
let store: EtcdStore;

before(async () => {
  etcd = await startTestEtcd('nodeimages', log);
  store = new EtcdStore(etcd.client(), log);
  await store.start();
  await store.commit([
    { kind: 'nodes', op: 'create', object: makeNode('n1', { addr: '10.9.0.1' }) },
    { kind: 'nodes', op: 'create', object: makeNode('n2', { addr: '10.9.0.2' }) },
  ]);
});

after(async () => {
  await store?.close();
  await etcd?.stop();
});

/** The handlers as node `nodeId` calls them (its certificate names it). */
function asNode(nodeId: string) {
  const h = imageIndexHandlers(store, () => ({ nodeId, role: 'worker', clusterId: 'c1' }), log);
  const call = <Req>(request: Req) => ({ request }) as unknown as grpc.ServerUnaryCall<Req, never>;
  return {
    report: (share: NodeImageShare) =>
      new Promise<void>((resolve, reject) =>
        h.ReportImages(call<ReportImagesRequest>({ share }), (err) => (err ? reject(err) : resolve())),
      ),
    find: (req: FindImageRequest) =>
      new Promise<FindImageResponse>((resolve, reject) =>
        h.FindImage(call<FindImageRequest>(req) as never, (err, res) => (err ? reject(err) : resolve(res!))),
      ),
  };
}

test('an image report is its own object: the node Version a client read stays valid for its update', async () => {
  const before = store.get('nodes', 'n1')!;
  await asNode('n1').report({ Port: 2378, Images: [{ Id: IMAGE, Refs: ['docker.io/library/x:1'] }] });
  const after = store.get('nodes', 'n1')!;
  assert.equal(after.Version.Index, before.Version.Index, 'the report moved the node Version');
  assert.deepEqual(after, before);
  assert.deepEqual(store.get('nodeImages', 'n1')?.Images, [{ Id: IMAGE, Refs: ['docker.io/library/x:1'] }]);
  // `docker node update` right after the report: its read-modify-write is not out of sequence.
  before.Spec.Availability = 'drain';
  await store.commit([{ kind: 'nodes', op: 'update', object: before }]);
  assert.equal(store.get('nodes', 'n1')!.Spec.Availability, 'drain');
});

test('other nodes find the reported image; the same report again writes nothing', async () => {
  assert.deepEqual(await asNode('n2').find({ ref: 'docker.io/library/x:1' }), {
    imageId: IMAGE,
    holders: [{ nodeId: 'n1', addr: '10.9.0.1:2378' }],
  });
  assert.deepEqual(await asNode('n1').find({ digest: IMAGE }), { holders: [] }, 'the asker is never its own source');
  const version = store.get('nodeImages', 'n1')!.Version.Index;
  await asNode('n1').report({ Port: 2378, Images: [{ Id: IMAGE, Refs: ['docker.io/library/x:1'] }] });
  assert.equal(store.get('nodeImages', 'n1')!.Version.Index, version);
  await asNode('n1').report({ Port: 2378, Images: [], Fetching: [IMAGE] });
  assert.ok(store.get('nodeImages', 'n1')!.Version.Index > version);
  assert.deepEqual(await asNode('n2').find({ digest: IMAGE }), { holders: [] });
});

test('removing a node removes its image report', async () => {
  const n = store.get('nodes', 'n1')!;
  n.Status.State = 'down';
  await store.commit([{ kind: 'nodes', op: 'update', object: n }]);
  await removeNode(store, 'n1', false);
  assert.equal(store.get('nodes', 'n1'), undefined);
  assert.equal(store.get('nodeImages', 'n1'), undefined);
  // A node that never reported is removed all the same.
  await removeNode(store, 'n2', true);
  assert.equal(store.get('nodes', 'n2'), undefined);
});

test('a node an older shoald stored with ImageShare reads back without it (watch and initial load)', async () => {
  // What a shoald from before nodeImages wrote: the image report inside the node object.
  const legacy = (id: string) =>
    JSON.stringify({ ...makeNode(id), ImageShare: { Port: 2378, Images: [{ Id: IMAGE, Refs: ['x:1'] }] } });
  // Through the running store's watch.
  await etcd.client().put(objectKey('nodes', 'old1')).value(legacy('old1'));
  await until('the legacy node in the store', () => !!store.get('nodes', 'old1'), 30_000);
  const seen = store.get('nodes', 'old1')!;
  assert.equal('ImageShare' in seen, false, 'ImageShare shown after a watch event');
  assert.equal(seen.Description?.Hostname, makeNode('old1').Description?.Hostname);
  // Through a new store's first read (a manager starting on an upgraded cluster).
  await etcd.client().put(objectKey('nodes', 'old2')).value(legacy('old2'));
  const fresh = new EtcdStore(etcd.client(), log);
  try {
    await fresh.start();
    for (const id of ['old1', 'old2']) {
      const n = fresh.get('nodes', id);
      assert.ok(n, `${id} missing`);
      assert.equal('ImageShare' in n, false, `ImageShare shown on ${id} after the initial load`);
    }
    // The node's next write leaves the field out of etcd too.
    const n = fresh.get('nodes', 'old2')!;
    n.Spec.Availability = 'drain';
    await fresh.commit([{ kind: 'nodes', op: 'update', object: n }]);
    const raw = await etcd.client().get(objectKey('nodes', 'old2')).string();
    assert.ok(raw && !raw.includes('ImageShare'), 'ImageShare still stored after an update');
  } finally {
    await fresh.close();
  }
});
